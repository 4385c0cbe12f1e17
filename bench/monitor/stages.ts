/**
 * Where flowmon's time goes, stage by stage: the production program run by
 * BPF_PROG_TEST_RUN on one frame at a time, with the stages switched on one after the
 * other through its own config (metrics 0: parse + lookups; L3|L4: + flow-table update;
 * L3|L4|L7: + HTTP check). The kernel reports the average time per run.
 *
 *   node --import tsx bench/monitor/stages.ts [--object bpf/.output/flowmon.bpf.o] [--repeat 1000000]
 */
import { parseArgs } from 'node:util';
import { BpfObject, objectPath } from '../../src/bpf/index.js';
import { FLOWMON_L3, FLOWMON_L4, FLOWMON_L7 } from '../../src/bpf/types.js';
import { writeFlowmonConfig } from '../../src/node/monitor/flowmon.js';
import { tcpFrame, udpFrame } from './packets.js';

const { values: args } = parseArgs({
  options: { object: { type: 'string' }, repeat: { type: 'string', default: '1000000' } },
});
const REPEAT = Number(args.repeat);

const frames: [string, Buffer][] = [
  ['UDP 64 B', udpFrame(40000, 5201, 64)],
  ['TCP ACK', tcpFrame(40000, 5201, '')],
  ['TCP data 1448 B', tcpFrame(40000, 5201, 'x'.repeat(1448))],
  ['HTTP GET', tcpFrame(40001, 80, 'GET /a HTTP/1.1\r\nHost: h\r\n\r\n')],
];
const configs: [string, number][] = [
  ['parse', 0],
  ['+flow', FLOWMON_L3 | FLOWMON_L4],
  ['+http', FLOWMON_L3 | FLOWMON_L4 | FLOWMON_L7],
];

/** Median of a few runs of `repeat` each: the machine is shared. */
function nsPerRun(run: () => number): number {
  const xs = Array.from({ length: 5 }, run).sort((a, b) => a - b);
  return xs[2] ?? 0;
}

export function measureStages(object = objectPath('flowmon')): Map<string, number[]> {
  const obj = BpfObject.load(object);
  const out = new Map<string, number[]>();
  try {
    const prog = obj.program('flowmon_egress');
    for (const [name, frame] of frames) {
      const row: number[] = [];
      for (const [, metrics] of configs) {
        if (obj.mapNames().includes('flowmon_config'))
          // an object from before the config moved to global data (for before/after runs)
          obj.map('flowmon_config').update(Buffer.alloc(4), Buffer.from([metrics, 0, 0, 0, 1, 0, 0, 0]));
        else writeFlowmonConfig(obj, { metrics, l7Sample: 1 });
        row.push(nsPerRun(() => prog.testRun(frame, REPEAT / 5).nsPerRun));
      }
      out.set(name, row);
    }
  } finally {
    obj.close();
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = measureStages(args.object);
  console.log(`flowmon_egress, ns/run (BPF_PROG_TEST_RUN, median of 5 x ${REPEAT / 5})`);
  console.log(`frame              ${configs.map(([n]) => n.padStart(7)).join(' ')}`);
  for (const [name, row] of rows)
    console.log(`${name.padEnd(18)} ${row.map((x) => x.toFixed(0).padStart(7)).join(' ')}`);
}
