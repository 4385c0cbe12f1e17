/**
 * The carousel: each file (and each stored TCP session of a service that asks for it) is sent
 * for `rounds` rounds, or over and over for `durationMs` after its first round started (at
 * least one round either way), so that a receiver that started late, or was blind for a
 * while, completes it from a later round. Rounds go round-robin: the item with the fewest
 * rounds sent goes next (ties: the oldest), so a new one does not wait behind the repeats of
 * an old one.
 */
import type { Progress, SpooledFile } from './spool.js';

export interface CarouselConfig {
  rounds: number;
  /** If set, repeat rounds until this long after the first round started. */
  durationMs?: number;
}

/** What the carousel needs to know of an item: rounds sent, and when the first started. */
export type RoundProgress = Pick<Progress, 'roundsDone' | 'startedAt'>;

/** True once an item has had all its rounds. */
export function roundsFinished(config: CarouselConfig, p: RoundProgress, now = Date.now()): boolean {
  if (p.roundsDone === 0) return false;
  if (config.durationMs !== undefined) return p.startedAt !== null && now - p.startedAt >= config.durationMs;
  return p.roundsDone >= config.rounds;
}

/** The first item (in the given order: oldest first) among those with the fewest rounds sent. */
export function fewestRounds<T>(items: Iterable<T>, progress: (item: T) => RoundProgress): T | undefined {
  let best: T | undefined;
  for (const item of items) {
    if (!best || progress(item).roundsDone < progress(best).roundsDone) best = item;
  }
  return best;
}

export class Carousel {
  constructor(private readonly config: CarouselConfig) {}

  /** True once the file has had all its rounds. */
  finished(p: Progress, now = Date.now()): boolean {
    return roundsFinished(this.config, p, now);
  }

  /** The file to send a round of next. */
  pick(files: SpooledFile[], now = Date.now()): SpooledFile | undefined {
    const due = files.filter((f) => !this.finished(f.progress, now));
    // A round already under way goes on first (after a restart, too).
    return due.find((f) => f.progress.nextChunk > 0) ?? fewestRounds(due, (f) => f.progress);
  }
}
