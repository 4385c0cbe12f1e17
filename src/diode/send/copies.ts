/**
 * How many extra copies of a frame to send, by its importance and how much of the send
 * buffer is free (the paper's Table 2, which gives the idea but no numbers). The aggregator
 * asks every `everyMs` (10 ms) and applies the answer to the frames of the next period.
 *
 * Defaults (configurable): high importance (TCP, control) 2 copies when at least 75 % of the
 * buffer is free, 1 from 50 %; low importance (UDP) 1 copy from 75 %; none below. Copies
 * only spend capacity that would otherwise go unused: a full buffer means the link is
 * already busy with originals, and a copy there would delay data instead of protecting it.
 */
import { Importance } from '../protocol/frame.js';

export interface CopyStep {
  /** Fraction of the send buffer that must be free, 0..1. */
  freeAtLeast: number;
  copies: number;
}

export interface CopyPolicyConfig {
  high: CopyStep[];
  low: CopyStep[];
}

export const DEFAULT_COPY_POLICY: CopyPolicyConfig = {
  high: [
    { freeAtLeast: 0.75, copies: 2 },
    { freeAtLeast: 0.5, copies: 1 },
  ],
  low: [{ freeAtLeast: 0.75, copies: 1 }],
};

export class CopyPolicy {
  private readonly steps: Record<Importance, CopyStep[]>;

  constructor(config: CopyPolicyConfig = DEFAULT_COPY_POLICY) {
    const sorted = (s: CopyStep[]) => [...s].sort((a, b) => b.freeAtLeast - a.freeAtLeast);
    this.steps = { [Importance.High]: sorted(config.high), [Importance.Low]: sorted(config.low) };
  }

  /** Extra copies for a frame of `importance` when `free` (0..1) of the buffer is free. */
  copies(importance: Importance, free: number): number {
    for (const step of this.steps[importance]) if (free >= step.freeAtLeast) return step.copies;
    return 0;
  }

  /** The most copies this policy ever asks for (the receiver's gap timer must outwait them). */
  maxCopies(): number {
    return Math.max(
      0,
      ...this.steps[Importance.High].map((s) => s.copies),
      ...this.steps[Importance.Low].map((s) => s.copies),
    );
  }
}
