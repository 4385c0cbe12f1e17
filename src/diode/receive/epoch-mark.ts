/**
 * The receiver's replay guard across restarts (with auth): the newest epoch accepted and, for
 * it, a reserved high-water mark of the link and repair sequences. Like the node's seq block
 * reservation (src/node/export/seq.ts), a mark is written — durably, before any frame at or
 * above the old one is accepted — a reserve ahead of the highest sequence seen, and written
 * again when half of it is used. The reserve is about RESERVE_MS of the link's frames at the
 * rate last seen (at least MIN_RESERVE_FRAMES, at most MAX_RESERVE_FRAMES): a write about
 * twice a second at any rate, by a thread of its own (mark-writer.ts). After a restart everything of that epoch below the marks is
 * refused: recorded frames replayed then are not delivered again. The price: up to about a
 * second of frames the sender sent around the restart are refused too (files recover from
 * later rounds; TCP sessions in flight are reset, as on any receiver restart).
 *
 * The file is JSON, written with writeFileAtomic (fsync, rename, fsync of the directory). A
 * file that cannot be read as such is an error, never "epoch 0": the receiver refuses to
 * start and says what to do.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../shared/atomic-file.js';

export const RESERVE_MS = 1000;
export const MIN_RESERVE_FRAMES = 1024;
export const MAX_RESERVE_FRAMES = 1 << 20;

/** The reserve after `frames` sequences in `ms`: RESERVE_MS of them, within the bounds. */
export function reserveFor(frames: number, ms: number): number {
  const perMs = frames / Math.max(ms, 1);
  return Math.round(Math.min(MAX_RESERVE_FRAMES, Math.max(MIN_RESERVE_FRAMES, perMs * RESERVE_MS)));
}

export interface EpochMark {
  epoch: number;
  /** Link sequences below this may have been accepted in `epoch`. */
  link: number;
  /** Repair sequences below this may have been accepted in `epoch`. */
  repair: number;
}

export class EpochFileError extends Error {}

const u32 = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= 2 ** 32;

/** The mark kept in `file`; undefined when there is none yet; throws EpochFileError when it is unreadable. */
export function loadEpochMark(file: string): EpochMark | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new EpochFileError(`${file}: cannot read the newest epoch: ${(err as Error).message}`);
  }
  const fail = (why: string) =>
    new EpochFileError(
      `${file}: ${why}; the receiver cannot know which epochs are old (replays). Restore it, or — ` +
        'knowing that old traffic could then be replayed once — remove it and restart',
    );
  // Before issue 16 the file held the epoch alone.
  if (/^\d+\n?$/.test(text)) {
    const epoch = Number(text.trim());
    if (!u32(epoch)) throw fail('the epoch is out of range');
    return { epoch, link: 0, repair: 0 };
  }
  let m: EpochMark;
  try {
    m = JSON.parse(text) as EpochMark;
  } catch {
    throw fail(text.length === 0 ? 'the file is empty' : 'the file is not JSON');
  }
  if (!u32(m?.epoch) || !u32(m.link) || !u32(m.repair)) throw fail('the file lacks epoch, link or repair');
  return { epoch: m.epoch, link: m.link, repair: m.repair };
}

export function saveEpochMark(file: string, m: EpochMark): void {
  writeFileAtomic(file, `${JSON.stringify(m)}\n`);
}
