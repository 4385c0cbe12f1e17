import type { FlowmonClockSample } from '../../bpf/types.js';

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

/** The kernel's HZ choices (Kconfig); a measured tick within 1 % of one is taken as exact. */
const KERNEL_HZ = [100, 250, 300, 1000, 24, 32, 48, 64, 128, 256, 512, 1024];
/** A step of jiffies seen between two readings this close is dated to within this (ns). */
const TIGHT_NS = 100_000;
const CALIBRATION_LIMIT_MS = 1000;

/** The moment jiffies became `jiffies`, in CLOCK_MONOTONIC ns, dated to within `widthNs`. */
interface Step {
  jiffies: number;
  monoNs: number;
  widthNs: number;
}

/**
 * Maps the kernel's jiffies (flowmon's flow times: bpf_jiffies64 is the cheapest clock a
 * program can read) to CLOCK_MONOTONIC. The kernel advances jiffies from the monotonic
 * clock, one step per TICK_NSEC, so two dated steps give the map for good: calibrate()
 * reads both clocks in a tight loop until it has seen jiffies step twice (1 to 2 ticks:
 * 4-8 ms at HZ 250). A flow's time is then the moment its last tick began, as the coarse
 * clock would say, a jiffy behind at most.
 */
export class TickClock {
  private origin: Step | undefined;
  private tickNs = 0;

  constructor(private readonly sample: () => FlowmonClockSample) {}

  private read(): { jiffies: number; monoNs: number } {
    const s = this.sample();
    return { jiffies: Number(s.jiffies), monoNs: Number(s.monoNs) };
  }

  /** The next step of jiffies, dated as tightly as it comes within the time left. */
  private nextStep(deadlineNs: number): Step {
    let best: Step | undefined;
    let prev = this.read();
    for (;;) {
      const now = this.read();
      if (now.jiffies !== prev.jiffies) {
        const step = { jiffies: now.jiffies, monoNs: now.monoNs, widthNs: now.monoNs - prev.monoNs };
        if (step.widthNs <= TIGHT_NS) return step;
        // preempted across the step: keep it only if nothing better comes
        if (!best || step.widthNs < best.widthNs) best = step;
      }
      if (now.monoNs > deadlineNs && best) return best;
      prev = now;
    }
  }

  /** Dates two steps of jiffies: the origin of the map and the tick's length. Blocks for 1-2 ticks. */
  calibrate(): void {
    const deadlineNs = this.read().monoNs + CALIBRATION_LIMIT_MS * 1e6;
    const first = this.nextStep(deadlineNs);
    const second = this.nextStep(deadlineNs);
    const measured = (second.monoNs - first.monoNs) / (second.jiffies - first.jiffies);
    const hz = KERNEL_HZ.find((h) => Math.abs(1e9 / h - measured) <= 0.01 * measured);
    // TICK_NSEC, as the kernel rounds it
    this.tickNs = hz ? Math.floor((1e9 + hz / 2) / hz) : measured;
    this.origin = first.widthNs <= second.widthNs ? first : second;
  }

  /** Milliseconds between ticks (TICK_NSEC); 0 before calibrate(). */
  get tickLengthMs(): number {
    return this.tickNs / 1e6;
  }

  /** A flow time in jiffies as CLOCK_MONOTONIC milliseconds. */
  toMonoMs(jiffies: number): number {
    const origin = this.origin;
    if (!origin) throw new Error('TickClock: calibrate() has not completed');
    return (origin.monoNs + (jiffies - origin.jiffies) * this.tickNs) / 1e6;
  }
}
