/**
 * User-side capacity of the monitor, with real kernel-made data: flows created by running
 * flowmon (BPF_PROG_TEST_RUN) on frames of distinct ports, HTTP events pushed by the program
 * into the real ring buffer. Measures CPU time of FlowTable.read and of the ring drain +
 * decode, per million updates/events, against the time that much data takes to arrive at
 * 1 M/s (1 s): a ratio < 1 means one core keeps up.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { parseArgs } from 'node:util';
import { BpfObject, objectPath, RingBufferReader } from '../../src/bpf/index.js';
import { MonotonicClock, TickClock } from '../../src/node/monitor/clock.js';
import { FlowKeyCache } from '../../src/node/monitor/flow-key.js';
import { FlowTable } from '../../src/node/monitor/flow-table.js';
import { readClockSample, writeFlowmonConfig } from '../../src/node/monitor/flowmon.js';
import { decodeHttpEvent } from '../../src/node/monitor/http-event.js';
import { tcpFrame } from './packets.js';

/** Called around the measured parts only: a profiler's signals would interrupt the kernel calls. */
export interface Measured {
  start(): void;
  stop(): void;
}

function cpuMs(fn: () => void, around?: Measured): number {
  around?.start();
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  around?.stop();
  return (used.user + used.system) / 1000;
}

export function measureUserSide(flows = 200_000, events = 1_000_000, around?: Measured) {
  const obj = BpfObject.load(objectPath('flowmon'), { maxEntries: { flowmon_flows: flows * 2 } });
  try {
    const prog = obj.program('flowmon_egress');
    writeFlowmonConfig(obj, { metrics: 7, l7Sample: 1 });
    const clock = new MonotonicClock();
    const ticks = new TickClock(() => readClockSample(obj));
    ticks.calibrate();
    const table = new FlowTable(obj.map('flowmon_flows'), clock, ticks, {
      node: 'bench',
      idleTimeoutMs: 3_600_000,
      ifaceName: (i) => `if${i}`,
    });
    const frames = Array.from({ length: flows }, (_, i) =>
      tcpFrame(1024 + (i % 60000), 2000 + Math.floor(i / 60000), 'x'),
    );
    for (const f of frames) prog.testRun(f);
    table.read(); // first sight of every flow: keys decoded once
    // Every flow moves again, then one read; the median of 3 rounds (the machine is shared).
    let records = 0;
    const rounds: number[] = [];
    for (let r = 0; r < 3; r++) {
      for (const f of frames) prog.testRun(f);
      rounds.push(
        cpuMs(() => {
          records = table.read().length;
        }, around),
      );
    }
    const flowMs = rounds.sort((x, y) => x - y)[1] ?? 0;

    const ring = new RingBufferReader(obj.map('flowmon_events'));
    const http = tcpFrame(
      40000,
      80,
      'GET /api/v1/items?id=42 HTTP/1.1\r\nHost: tower.mesh\r\nUser-Agent: bench\r\n\r\n',
    );
    const batch = 10_000; // fits the 8 MiB ring
    let decoded = 0;
    let httpMs = 0;
    const keys = new FlowKeyCache((i) => `if${i}`);
    for (let done = 0; done < events; done += batch) {
      prog.testRun(http, batch);
      httpMs += cpuMs(() => {
        ring.drain((data, at) => {
          if (decodeHttpEvent(data, at, 'bench', clock, (i) => `if${i}`, keys)) decoded++;
        });
      }, around);
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

/**
 * The user side alone:  node --import tsx bench/monitor/user-side.ts [--profile out.cpuprofile]
 * (--profile: V8 CPU profiles of the measured parts only, as a JSON array).
 */
if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { profile: { type: 'string' } } });
  const session = new Session();
  let around: Measured | undefined;
  if (values.profile) {
    session.connect();
    session.post('Profiler.enable');
    const profiles: unknown[] = [];
    around = {
      start: () => session.post('Profiler.start'),
      stop: () => session.post('Profiler.stop', (err, res) => void (err || profiles.push(res.profile))),
    };
    process.on('exit', () => writeFileSync(values.profile as string, JSON.stringify(profiles)));
  }
  const r = measureUserSide(200_000, 1_000_000, around);
  console.log(
    `flow updates: ${(1e3 / r.flowCpuMsPerMillion).toFixed(2)} M/s on one core (${r.flowUpdates}); ` +
      `HTTP events: ${(1e3 / r.httpCpuMsPerMillion).toFixed(2)} M/s (${r.httpEvents})`,
  );
}
