/**
 * Converts the kernel's bpf_ktime_get_ns (CLOCK_MONOTONIC) to wall-clock milliseconds.
 * process.hrtime.bigint() reads the same clock, so one offset taken at start serves.
 */
export class MonotonicClock {
  private readonly offsetNs: bigint;

  constructor() {
    this.offsetNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  }

  nowNs(): bigint {
    return process.hrtime.bigint();
  }

  toWallMs(monotonicNs: bigint): number {
    return Number((monotonicNs + this.offsetNs) / 1_000_000n);
  }
}
