/**
 * The two FEC codes a block can use, behind one pair of calls (the worker and the inline path
 * both use these): RaptorQ (raptorq.ts: near-ideal, any K + 2 symbols of a block decode it,
 * but ~1.5 CPU-s per Gbit each way) and LDPC-staircase with dense rows (ldpc.ts: a sixth to a ninth
 * of that, needing ~20 symbols beyond the lost ones). Which one a sender uses follows the
 * loss it is told to expect (`codeFor`); a receiver learns it from each repair frame's type.
 */
import { FrameType } from './frame.js';
import { decodeLdpc, encodeParity, MAX_LDPC_SYMBOLS } from './ldpc.js';
import { BlockDecoder, encodeRepairs, MAX_BLOCK_SYMBOLS } from './raptorq.js';

export type FecCode = 'raptorq' | 'ldpc';

/** Up to this expected loss, with losses one at a time, `auto` picks LDPC; above, or with bursts, RaptorQ. */
export const LDPC_UP_TO_LOSS = 0.02;

/** The code for a configuration: `auto` picks by the loss and burst length expected. */
export function codeFor(choice: FecCode | 'auto', loss: number, burstFrames: number): FecCode {
  if (choice !== 'auto') return choice;
  return loss <= LDPC_UP_TO_LOSS && burstFrames <= 1 ? 'ldpc' : 'raptorq';
}

/** The frame type that carries a repair symbol of `code`. */
export function repairType(code: FecCode): FrameType {
  return code === 'ldpc' ? FrameType.Parity : FrameType.Repair;
}

/** The code of a repair frame's type; undefined for any other frame. */
export function codeOfType(type: number): FecCode | undefined {
  return type === FrameType.Parity ? 'ldpc' : type === FrameType.Repair ? 'raptorq' : undefined;
}

export function maxBlockSymbols(code: FecCode): number {
  return code === 'ldpc' ? MAX_LDPC_SYMBOLS : MAX_BLOCK_SYMBOLS;
}

export interface Symbols {
  esis: Uint32Array;
  /** esis.length symbols of t bytes, in that order. */
  symbols: Uint8Array;
}

/** The `r` repair symbols of the `data.length / t` sources in `data`, with their ids. */
export function encodeSymbols(code: FecCode, data: Uint8Array, t: number, r: number): Symbols {
  if (code === 'ldpc') {
    const k = data.length / t;
    return { esis: Uint32Array.from({ length: r }, (_, i) => k + i), symbols: encodeParity(data, t, r) };
  }
  const repairs = encodeRepairs(data, t, r);
  const symbols = new Uint8Array(repairs.length * t);
  repairs.forEach((x, i) => {
    symbols.set(x.symbol, i * t);
  });
  return { esis: Uint32Array.from(repairs, (x) => x.esi), symbols };
}

/**
 * The sources a block lacks, from the symbols it received (sources and repairs, ids in
 * `given.esis`); undefined when these are not enough. Sources given are not returned.
 */
export function decodeSymbols(
  code: FecCode,
  k: number,
  r: number,
  t: number,
  given: Symbols,
): Symbols | undefined {
  if (code === 'ldpc') return decodeLdpc(k, r, t, given.esis, given.symbols);
  const decoder = new BlockDecoder(k, t);
  try {
    let whole: Uint8Array | undefined;
    for (let i = 0; i < given.esis.length && !whole; i++)
      whole = decoder.add(given.esis[i]!, given.symbols.subarray(i * t, (i + 1) * t));
    if (!whole) return undefined;
    const have = new Set<number>();
    for (const e of given.esis) if (e < k) have.add(e);
    const missing: number[] = [];
    for (let j = 0; j < k; j++) if (!have.has(j)) missing.push(j);
    const symbols = new Uint8Array(missing.length * t);
    missing.forEach((j, i) => {
      symbols.set(whole.subarray(j * t, (j + 1) * t), i * t);
    });
    return { esis: Uint32Array.from(missing), symbols };
  } finally {
    decoder.free();
  }
}

/** A coding job, as the FEC thread (fec-worker.ts) or the in-line path (tests) runs it. */
export type FecJob =
  | { op: 'encode'; code: FecCode; data: Uint8Array; t: number; r: number }
  | { op: 'decode'; code: FecCode; k: number; r: number; t: number; esis: Uint32Array; symbols: Uint8Array };

/** What a job gives: the symbols, `short` (a decode that needs more of them), or the error; and its time. */
export type FecResult = Partial<Symbols> & { ms?: number; short?: boolean; error?: string };

export function runFecJob(job: FecJob): FecResult {
  const started = performance.now();
  try {
    const out =
      job.op === 'encode'
        ? encodeSymbols(job.code, job.data, job.t, job.r)
        : decodeSymbols(job.code, job.k, job.r, job.t, { esis: job.esis, symbols: job.symbols });
    const ms = performance.now() - started;
    return out ? { ...out, ms } : { short: true, ms };
  } catch (err) {
    return { error: (err as Error).message };
  }
}
