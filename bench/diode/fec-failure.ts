/**
 * How often an FEC block fails to decode although it received more symbols than it lost
 * sources — the decode overhead a code needs, which fec-sizing.ts adds to R:
 *
 *   node --import tsx bench/diode/fec-failure.ts [--code ldpc|raptorq] [--k 4096] [--r 110]
 *     [--gaps 0,4,8,12,16,20,24] [--trials 10000]
 *
 * For each gap g: blocks of K sources and R repairs lose R − g symbols at random (sources
 * and repairs alike), are decoded from the rest, and the failures counted; every decoded
 * source is checked against the original. Small symbols (8 bytes, RaptorQ 64): whether a
 * block decodes does not depend on the symbol size.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { decodeLdpc, encodeParity } from '../../src/diode/protocol/ldpc.js';
import { BlockDecoder, encodeRepairs } from '../../src/diode/protocol/raptorq.js';

const option = (fallback: string) => ({ type: 'string' as const, default: fallback });
const { values } = parseArgs({
  options: {
    code: option('ldpc'),
    k: option('4096'),
    r: option('110'),
    gaps: option('0,4,8,12,16,20,24'),
    trials: option('10000'),
  },
});
const K = Number(values.k);
const R = Number(values.r);
const T = values.code === 'raptorq' ? 64 : 8;
const trials = Number(values.trials);
const data = randomBytes(K * T);

/** The block's symbols by id: sources 0..K-1, then the repairs with the ids the code gives them. */
const symbols = new Map<number, Uint8Array>();
for (let j = 0; j < K; j++) symbols.set(j, data.subarray(j * T, (j + 1) * T));
if (values.code === 'ldpc') {
  const parity = encodeParity(data, T, R);
  for (let i = 0; i < R; i++) symbols.set(K + i, parity.subarray(i * T, (i + 1) * T));
} else if (values.code === 'raptorq') {
  for (const x of encodeRepairs(data, T, R)) symbols.set(x.esi, x.symbol);
} else throw new Error('--code must be ldpc or raptorq');
const ids = [...symbols.keys()];

/** Decodes with `lost` missing; true when every source came back right. */
function decodes(lost: Set<number>): boolean {
  const kept = ids.filter((id) => !lost.has(id));
  if (values.code === 'raptorq') {
    const d = new BlockDecoder(K, T);
    let out: Uint8Array | undefined;
    for (const id of kept) out ??= d.add(id, symbols.get(id)!);
    d.free();
    if (out && Buffer.compare(Buffer.from(out), data) !== 0) throw new Error('decoded wrong');
    return out !== undefined;
  }
  const buf = new Uint8Array(kept.length * T);
  kept.forEach((id, i) => {
    buf.set(symbols.get(id)!, i * T);
  });
  const out = decodeLdpc(K, R, T, new Uint32Array(kept), buf);
  if (!out) return false;
  out.esis.forEach((j, i) => {
    if (
      Buffer.compare(Buffer.from(out.symbols.subarray(i * T, (i + 1) * T)), data.subarray(j * T, (j + 1) * T))
    )
      throw new Error(`source ${j} decoded wrong`);
  });
  return true;
}

console.log(`${values.code}: K = ${K}, R = ${R}, ${trials} blocks per row`);
for (const gap of values.gaps.split(',').map(Number)) {
  const e = R - gap;
  if (e < 1) continue;
  let failed = 0;
  const t0 = performance.now();
  for (let n = 0; n < trials; n++) {
    const lost = new Set<number>();
    while (lost.size < e) lost.add(ids[Math.floor(Math.random() * ids.length)]!);
    if (!decodes(lost)) failed++;
  }
  const ms = (performance.now() - t0) / trials;
  console.log(
    `  ${String(e).padStart(5)} of ${K + R} lost, ${String(gap).padStart(2)} to spare: ${failed} failed (${((100 * failed) / trials).toPrecision(2)} %)  ${ms.toFixed(2)} ms per block`,
  );
}
