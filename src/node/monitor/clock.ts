/**
 * Converts the kernel's bpf_ktime_get_ns (CLOCK_MONOTONIC) to wall-clock milliseconds.
 * process.hrtime.bigint() reads the same clock, so one offset taken at start serves.
 */
export class MonotonicClock {
  private readonly offsetNs: bigint;
  /** offsetNs = offsetMs * 1e6 + offsetRestNs, with 0 <= offsetRestNs < 1e6 (for toWallMsOf). */
  private readonly offsetMs: number;
  private readonly offsetRestNs: number;

  constructor() {
    this.offsetNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
    let ms = this.offsetNs / 1_000_000n;
    let rest = this.offsetNs - ms * 1_000_000n;
    if (rest < 0n) {
      ms -= 1n;
      rest += 1_000_000n;
    }
    this.offsetMs = Number(ms);
    this.offsetRestNs = Number(rest);
  }

  nowNs(): bigint {
    return process.hrtime.bigint();
  }

  toWallMs(monotonicNs: bigint): number {
    return Number((monotonicNs + this.offsetNs) / 1_000_000n);
  }

  /**
   * toWallMs of a u64 read as two u32 halves, without a BigInt: the same value, exactly
   * (integers below 2^53 are exact doubles; the quotient is corrected to the floor).
   */
  toWallMsOf(lo: number, hi: number): number {
    const ns = hi * 2 ** 32 + lo + this.offsetRestNs;
    if (ns >= Number.MAX_SAFE_INTEGER) return this.toWallMs((BigInt(hi) << 32n) | BigInt(lo));
    let ms = Math.floor(ns / 1e6);
    const rest = ns - ms * 1e6;
    if (rest < 0) ms -= 1;
    else if (rest >= 1e6) ms += 1;
    return ms + this.offsetMs;
  }
}
