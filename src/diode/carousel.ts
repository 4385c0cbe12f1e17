/**
 * The carousel: each file is sent for `rounds` rounds, or over and over for `durationMs`
 * after its first round started (at least one round either way), so that a receiver that
 * started late, or was blind for a while, completes it from a later round. Rounds go
 * round-robin: the file with the fewest rounds sent goes next (ties: the oldest), so a new
 * file does not wait behind the repeats of an old one.
 */
import type { Progress, SpooledFile } from './spool.js';

export interface CarouselConfig {
  rounds: number;
  /** If set, repeat rounds until this long after the first round started. */
  durationMs?: number;
}

export class Carousel {
  constructor(private readonly config: CarouselConfig) {}

  /** True once the file has had all its rounds. */
  finished(p: Progress, now = Date.now()): boolean {
    if (p.roundsDone === 0) return false;
    const { durationMs } = this.config;
    if (durationMs !== undefined) return p.startedAt !== null && now - p.startedAt >= durationMs;
    return p.roundsDone >= this.config.rounds;
  }

  /** The file to send a round of next. */
  pick(files: SpooledFile[], now = Date.now()): SpooledFile | undefined {
    let best: SpooledFile | undefined;
    for (const f of files) {
      if (this.finished(f.progress, now)) continue;
      // A round already under way goes on first (after a restart, too).
      if (f.progress.nextChunk > 0) return f;
      if (!best || f.progress.roundsDone < best.progress.roundsDone) best = f;
    }
    return best;
  }

  describe(): string {
    return this.config.durationMs !== undefined
      ? `for ${this.config.durationMs / 1000} s`
      : `${this.config.rounds} round${this.config.rounds === 1 ? '' : 's'}`;
  }
}
