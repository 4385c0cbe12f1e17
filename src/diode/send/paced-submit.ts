/**
 * Frames from a sending loop that reads from disk (the file sender, the rounds of stored TCP
 * sessions): submitted to the aggregator only while its buffer has room, waiting for it to
 * drain otherwise, and yielding to the event loop every few frames — the pacer runs on
 * timers, and a refill of the buffer in one go (~700 frames) would hold it for 10 ms and
 * lose that link time.
 */
import type { Aggregator, OutgoingFrame } from './aggregator.js';

const YIELD_EVERY = 32;

export class PacedSubmitter {
  private sinceYield = 0;

  constructor(
    private readonly aggregator: Aggregator,
    private readonly stopped: () => boolean,
  ) {}

  async submit(frame: OutgoingFrame): Promise<void> {
    if (++this.sinceYield >= YIELD_EVERY) {
      this.sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
    while (!this.aggregator.hasRoom() && !this.stopped()) {
      await new Promise<void>((resolve) => {
        const off = this.aggregator.onDrain(() => {
          off();
          resolve();
        });
        setTimeout(() => {
          off();
          resolve();
        }, 50).unref();
      });
    }
    this.aggregator.submit(frame);
  }
}

/** Where a sending loop waits for work: a timeout, or `wake()` when something new is there. */
export class Doorbell {
  private ring: (() => void) | undefined;

  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.ring = resolve;
      setTimeout(resolve, ms).unref();
    }).finally(() => {
      this.ring = undefined;
    });
  }

  wake(): void {
    this.ring?.();
  }
}
