/**
 * Which map for the flow table? Per-packet cost of flowmon's accounting in the kernel with
 * a per-CPU hash (no atomics), an LRU hash and a plain hash (both shared, atomic adds),
 * timed by BPF_PROG_TEST_RUN on one hot flow and on 50,000 flows, and what each does when
 * the table is full; and the per-CPU hash with a 20-byte IPv4 key instead of the 44-byte
 * flow_key (what hashing the key costs).
 *
 *   node --import tsx bench/monitor/map-choice.ts
 */
import { mkdtempSync } from 'node:fs';
import { BpfObject } from '../../src/bpf/index.js';
import { run } from '../../src/shared/exec.js';
import { tcpFrame } from './packets.js';

const here = new URL('.', import.meta.url).pathname;
const bpfDir = new URL('../../bpf/', import.meta.url).pathname;
const out = mkdtempSync('/tmp/tacmesh-mapchoice-');
const variants = [
  { id: 1, name: 'percpu_hash' },
  { id: 2, name: 'lru_hash + atomics' },
  { id: 3, name: 'hash + atomics' },
  { id: 4, name: 'percpu_hash, v4 key' },
];
const FLOWS = 50_000;
const frames = Array.from({ length: FLOWS }, (_, i) =>
  tcpFrame(1024 + (i % 60000), 3000 + Math.floor(i / 60000), 'x'),
);

console.log('flow table map type   hot flow ns/pkt   50k flows ns/pkt   200k flows into 65k entries');
for (const v of variants) {
  const obj = `${out}/v${v.id}.o`;
  await run('clang', [
    '-g',
    '-O2',
    '-target',
    'bpf',
    '-D__TARGET_ARCH_x86',
    `-DVARIANT=${v.id}`,
    `-I${bpfDir}.output`,
    `-I${bpfDir}`,
    '-I/usr/include/x86_64-linux-gnu',
    '-c',
    `${here}map-variants.bpf.c`,
    '-o',
    obj,
  ]);
  const o = BpfObject.load(obj);
  try {
    const prog = o.program('account');
    const hot = prog.testRun(frames[0] as Buffer, 2_000_000).nsPerRun;
    for (const f of frames) prog.testRun(f); // create them
    let total = 0;
    for (let i = 0; i < FLOWS; i += 50) total += prog.testRun(frames[i] as Buffer, 2000).nsPerRun;
    const many = total / (FLOWS / 50);
    // Overflow: 200k distinct flows into 65,536 entries; how many entries end up holding data.
    const more = Array.from({ length: 150_000 }, (_, i) =>
      tcpFrame(1024 + (i % 60000), 9000 + Math.floor(i / 60000), 'x'),
    );
    for (const f of more) prog.testRun(f);
    let entries = 0;
    o.map('flows').readBatches((_k, _v, n) => {
      entries += n;
    });
    const fate =
      v.id === 2
        ? `${entries} kept, older flows evicted silently`
        : `${entries} kept, new flows refused (countable)`;
    console.log(
      `${v.name.padEnd(21)} ${hot.toFixed(0).padStart(15)}   ${many.toFixed(0).padStart(16)}   ${fate}`,
    );
  } finally {
    o.close();
  }
}
