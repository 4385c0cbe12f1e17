/**
 * CPU cost of the diode's FEC codes and frame tags, per Gbit/s of source data, on one core:
 *
 *   node --import tsx bench/diode/fec-cpu.ts [--k 4096] [--loss 0.1,1,5] [--seconds 2]
 *
 * For each loss: blocks of K symbols of 1424 bytes (the 1500-byte-MTU symbol size with tags)
 * with the repairs fec-sizing.ts gives each code for that loss; encode: the repair symbols;
 * decode: the block with that share of its sources lost at random, rebuilt from the rest and
 * the repairs (what a receiver does for every block that lost something). RaptorQ (wasm)
 * against LDPC-staircase with dense rows (ldpc.ts); tag: HMAC-SHA-256 of 1472-byte frames
 * (auth.ts). CPU time from process.cpuUsage().
 */
import { createHmac, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { decodeSymbols, encodeSymbols, type FecCode } from '../../src/diode/protocol/fec-code.js';
import { repairsFor } from '../../src/diode/protocol/fec-sizing.js';

const { values } = parseArgs({
  options: {
    k: { type: 'string', default: '4096' },
    loss: { type: 'string', default: '0.1,1,5' },
    seconds: { type: 'string', default: '2' },
  },
});
const K = Number(values.k);
const T = 1424;
const seconds = Number(values.seconds);
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

const cell = (m: { cpuPerGbit: number; gbitPerCore: number }) =>
  `${m.cpuPerGbit.toFixed(2).padStart(5)} CPU-s/Gbit (${m.gbitPerCore.toFixed(2).padStart(5)} Gbit/s per core)`;

console.log(`FEC: K = ${K} symbols of ${T} bytes; decode = the block with the row's loss of its sources`);
for (const loss of values.loss.split(',').map((p) => Number(p) / 100)) {
  for (const code of ['raptorq', 'ldpc'] as FecCode[]) {
    const r = repairsFor(K, { loss, burst: 1, margin: 0.1, failure: 1e-5 }, code);
    const repairs = encodeSymbols(code, data, T, r);
    const enc = measure(() => encodeSymbols(code, data, T, r), K * T * 8);
    const dec = measure(
      () => {
        const ids: number[] = [];
        for (let j = 0; j < K; j++) if (Math.random() >= loss) ids.push(j);
        const symbols = new Uint8Array((ids.length + r) * T);
        ids.forEach((j, i) => {
          symbols.set(data.subarray(j * T, (j + 1) * T), i * T);
        });
        symbols.set(repairs.symbols, ids.length * T);
        const esis = Uint32Array.from([...ids, ...repairs.esis]);
        if (!decodeSymbols(code, K, r, T, { esis, symbols }))
          throw new Error(`${code}: a block did not decode`);
      },
      K * T * 8,
    );
    console.log(
      `${`${(loss * 100).toFixed(1)} %`.padStart(6)} ${code.padEnd(8)} R = ${String(r).padStart(4)} (${((100 * r) / K).toFixed(1).padStart(4)} %)  encode ${cell(enc)}  decode ${cell(dec)}`,
    );
  }
}
const key = randomBytes(32);
const frame = randomBytes(1472);
const tag = measure(
  () => {
    for (let i = 0; i < 1000; i++) createHmac('sha256', key).update(frame).digest();
  },
  1000 * 1472 * 8,
);
console.log(`HMAC-SHA-256 tag (either side)  ${cell(tag)}`);
