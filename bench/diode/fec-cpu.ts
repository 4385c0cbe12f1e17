/**
 * CPU cost of the diode's FEC and frame tags, per Gbit/s of source data, on one core:
 *
 *   node --import tsx bench/diode/fec-cpu.ts [--k 2048] [--loss 5] [--seconds 3]
 *
 * encode: RaptorQ repair symbols for blocks of K symbols of 1424 bytes (the 1500-byte-MTU
 * symbol size with tags) with the repairs fec-sizing.ts gives for --loss; decode: the same
 * blocks with --loss % of the sources lost at random, rebuilt from the rest and the repairs;
 * tag: HMAC-SHA-256 of 1472-byte frames (auth.ts). CPU time from process.cpuUsage().
 */
import { createHmac, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { repairsFor } from '../../src/diode/protocol/fec-sizing.js';
import { BlockDecoder, encodeRepairs } from '../../src/diode/protocol/raptorq.js';

const { values } = parseArgs({
  options: {
    k: { type: 'string', default: '2048' },
    loss: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '3' },
  },
});
const K = Number(values.k);
const T = 1424;
const loss = Number(values.loss) / 100;
const seconds = Number(values.seconds);
const R = repairsFor(K, { loss, burst: 1, margin: 0.1, failure: 1e-5 });
const data = randomBytes(K * T);

/** Runs `body` repeatedly for the configured time; CPU seconds per Gbit of `bitsPer` each. */
function measure(body: () => void, bitsPer: number): { cpuPerGbit: number; gbitPerCore: number } {
  let bits = 0;
  const wall = performance.now();
  const cpu = process.cpuUsage();
  while (performance.now() - wall < seconds * 1000) {
    body();
    bits += bitsPer;
  }
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  return { cpuPerGbit: cpuSeconds / (bits / 1e9), gbitPerCore: bits / 1e9 / cpuSeconds };
}

const repairs = encodeRepairs(data, T, R);
const enc = measure(() => encodeRepairs(data, T, R), K * T * 8);
const dec = measure(
  () => {
    const d = new BlockDecoder(K, T);
    let out: Uint8Array | undefined;
    for (let i = 0; i < K && !out; i++)
      if (Math.random() >= loss) out = d.add(i, data.subarray(i * T, (i + 1) * T));
    for (const r of repairs) out ??= d.add(r.esi, r.symbol);
    d.free();
    if (!out) throw new Error('a block did not decode');
  },
  K * T * 8,
);
const key = randomBytes(32);
const frame = randomBytes(1472);
const tag = measure(
  () => {
    for (let i = 0; i < 1000; i++) createHmac('sha256', key).update(frame).digest();
  },
  1000 * 1472 * 8,
);

const row = (name: string, m: { cpuPerGbit: number; gbitPerCore: number }) =>
  `${name.padEnd(34)} ${m.cpuPerGbit.toFixed(2).padStart(6)} CPU-s per Gbit   ${m.gbitPerCore.toFixed(2).padStart(6)} Gbit/s per core`;
console.log(
  `FEC: K = ${K} symbols of ${T} bytes, R = ${R} (${((100 * R) / K).toFixed(1)} %, for ${values.loss} % loss)`,
);
console.log(row('RaptorQ encode (sender)', enc));
console.log(row(`RaptorQ decode, ${values.loss} % lost (receiver)`, dec));
console.log(row('HMAC-SHA-256 tag (either side)', tag));
console.log(
  `at 100 Mbit/s: encode ${(enc.cpuPerGbit * 10).toFixed(1)} % of a core, decode ${(dec.cpuPerGbit * 10).toFixed(1)} %, tags ${(tag.cpuPerGbit * 10).toFixed(1)} %`,
);
