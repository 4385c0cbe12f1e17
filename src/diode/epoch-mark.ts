/**
 * The receiver's replay guard across restarts (with auth): the newest epoch accepted and, for
 * it, a reserved high-water mark of the link and repair sequences. Like the node's seq block
 * reservation (src/node/export/seq.ts), a mark is written — durably, before any frame at or
 * above the old one is accepted — `RESERVE_FRAMES` ahead of the highest sequence seen, so a
 * write is needed only every RESERVE_FRAMES / 2 frames. After a restart everything of that
 * epoch below the marks is refused: recorded frames replayed then are not delivered again.
 * The price: up to RESERVE_FRAMES frames the sender sent after the receiver stopped are refused
 * too (files and TCP sessions already in flight then recover by the carousel, or are reset).
 *
 * The file is JSON, written with writeFileAtomic (fsync, rename, fsync of the directory). A
 * file that cannot be read as such is an error, never "epoch 0": the receiver refuses to
 * start and says what to do.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../shared/atomic-file.js';

export const RESERVE_FRAMES = 1 << 16;

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
