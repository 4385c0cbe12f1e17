/**
 * User-side capacity of the monitor, with real kernel-made data: flows created by running
 * flowmon (BPF_PROG_TEST_RUN) on frames of distinct ports, HTTP events pushed by the program
 * into the real ring buffer. Measures CPU time of FlowTable.read and of the ring drain +
 * decode, per million updates/events, against the time that much data takes to arrive at
 * 1 M/s (1 s): a ratio < 1 means one core keeps up.
 */
import { BpfObject, objectPath, RingBufferReader } from '../../src/bpf/index.js';
import { flowmonConfig, u32Key } from '../../src/bpf/types.js';
import { MonotonicClock } from '../../src/node/monitor/clock.js';
import { FlowTable } from '../../src/node/monitor/flow-table.js';
import { decodeHttpEvent } from '../../src/node/monitor/http-event.js';
import { tcpFrame } from './packets.js';

function cpuMs(fn: () => void): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

export function measureUserSide(flows = 200_000, events = 1_000_000) {
  const obj = BpfObject.load(objectPath('flowmon'), { maxEntries: { flowmon_flows: flows * 2 } });
  try {
    const prog = obj.program('flowmon_egress');
    obj.map('flowmon_config').typed(u32Key, flowmonConfig).update(0, { metrics: 7, l7Sample: 1 });
    const clock = new MonotonicClock();
    const table = new FlowTable(obj.map('flowmon_flows'), clock, {
      node: 'bench',
      idleTimeoutMs: 3_600_000,
      ifaceName: (i) => `if${i}`,
    });
    const frames = Array.from({ length: flows }, (_, i) =>
      tcpFrame(1024 + (i % 60000), 2000 + Math.floor(i / 60000), 'x'),
    );
    for (const f of frames) prog.testRun(f);
    table.read(); // first sight of every flow: keys decoded once
    for (const f of frames) prog.testRun(f); // every flow moves again
    let records = 0;
    const flowMs = cpuMs(() => {
      records = table.read().length;
    });

    const ring = new RingBufferReader(obj.map('flowmon_events'));
    const http = tcpFrame(
      40000,
      80,
      'GET /api/v1/items?id=42 HTTP/1.1\r\nHost: tower.mesh\r\nUser-Agent: bench\r\n\r\n',
    );
    const batch = 10_000; // fits the 8 MiB ring
    let decoded = 0;
    let httpMs = 0;
    for (let done = 0; done < events; done += batch) {
      prog.testRun(http, batch);
      httpMs += cpuMs(() => {
        ring.drain((data, at) => {
          if (decodeHttpEvent(data, at, 'bench', clock, (i) => `if${i}`)) decoded++;
        });
      });
    }
    ring.close();
    return {
      flowUpdates: records,
      flowCpuMsPerMillion: (flowMs * 1e6) / records,
      httpEvents: decoded,
      httpCpuMsPerMillion: (httpMs * 1e6) / decoded,
    };
  } finally {
    obj.close();
  }
}
