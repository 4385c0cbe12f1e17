/**
 * How many repair symbols a block of K frames needs, from the loss the operator expects.
 *
 * A fixed code is all or nothing: a block of K sources and R repairs decodes when any K + h
 * of its K + R symbols arrive — h, the code's decode overhead: RaptorQ fails with
 * probability about 1/256^(h+1) at K + h, so h = 2; LDPC-staircase with dense rows about as a
 * random binary code, 2^-h, so h = 20 (bench/diode/fec-failure.ts measures both) — and fails
 * outright a few losses later. So R is not "the loss rate times K" but the point far enough
 * into the tail of the loss distribution that a block fails at most with probability
 * `failure` at the expected loss:
 *
 *   losses come in bursts of `burst` frames (1 = independent loss); the number of bursts
 *   in a block of N = K + R frames is Poisson with mean N * p / burst, where p is the
 *   expected loss with `margin` added (p = loss * (1 + margin));
 *   R = the smallest count with P(burst * bursts > R - h) <= failure.
 *
 * Independent loss is binomial; Poisson has a slightly longer tail, so this errs on the
 * safe side. Longer blocks average more, so they need less overhead for the same failure
 * rate (5 % loss: 8.5 % at K = 2048 against 13 % at K = 256) — and cost more latency and
 * decoding time. `describeSizing` prints the table for a configuration.
 */
import type { FecCode } from './fec-code.js';

export interface FecSizing {
  /** Expected fraction of datagrams lost, 0..1. */
  loss: number;
  /** Mean length of a loss burst, in datagrams (1 = independent loss). */
  burst: number;
  /** Added to the loss before sizing, as a fraction of it (0.2 = plan for 20 % more loss). */
  margin: number;
  /** Largest acceptable probability that a block cannot be decoded at that loss. */
  failure: number;
}

/** Extra symbols beyond K a decoder is given: RaptorQ fails ~ 1/256^3 at K + 2, LDPC ~ 2^-20 at K + 20. */
export const DECODE_OVERHEAD: Record<FecCode, number> = { raptorq: 2, ldpc: 20 };

/** P(X > x) for X ~ Poisson(lambda), computed in log space (lambda up to a few thousand). */
export function poissonTail(lambda: number, x: number): number {
  if (x < 0) return 1;
  if (lambda <= 0) return 0;
  // P(X <= x) summed from the mode outwards to stay accurate for large lambda.
  let logTerm = -lambda;
  let cdf = 0;
  for (let i = 0; i <= x; i++) {
    if (i > 0) logTerm += Math.log(lambda / i);
    cdf += Math.exp(logTerm);
  }
  return Math.max(0, 1 - cdf);
}

/** The repair symbols a block of `k` sources gets in `code` (0 when no loss is expected). */
export function repairsFor(k: number, s: FecSizing, code: FecCode = 'raptorq'): number {
  const p = Math.min(0.5, s.loss * (1 + s.margin));
  if (p <= 0 || k <= 0) return 0;
  const burst = Math.max(1, s.burst);
  const h = DECODE_OVERHEAD[code];
  for (let r = h; r < 4 * k + 64; r++) {
    const lambda = ((k + r) * p) / burst;
    const tolerable = Math.floor((r - h) / burst);
    if (poissonTail(lambda, tolerable) <= s.failure) return r;
  }
  return 4 * k + 64;
}

/** The sizing as a table (block length → repairs and overhead per code), for the docs and the CLI. */
export function describeSizing(s: FecSizing, blocks = [64, 256, 1024, 2048, 4096]): string {
  const rows = blocks.map((k) => {
    const cell = (code: FecCode) => {
      const r = repairsFor(k, s, code);
      return `R = ${String(r).padStart(5)}  overhead ${((100 * r) / k).toFixed(1).padStart(5)} %`;
    };
    return `  K = ${String(k).padStart(5)}  raptorq ${cell('raptorq')}   ldpc ${cell('ldpc')}`;
  });
  return [
    `loss ${(s.loss * 100).toFixed(2)} % in bursts of ${s.burst}, margin ${(s.margin * 100).toFixed(0)} %, ` +
      `block failure <= ${s.failure}`,
    ...rows,
  ].join('\n');
}
