/**
 * The SHA-256 of a file whose chunks arrive in any order, computed as its in-order prefix
 * grows: a chunk that extends the prefix is hashed as it is stored, and chunks that came
 * early (after a loss FEC rebuilt later) are read back then, from the page cache. So checking
 * a complete file costs only its last chunks, not a second pass over all of it.
 */
import { createHash } from 'node:crypto';

export class PrefixHash {
  private readonly hash = createHash('sha256');
  private next = 0;

  constructor(
    private readonly chunks: number,
    /** Reads back a chunk that is already stored. */
    private readonly read: (index: number) => Buffer,
  ) {}

  /** Chunk `index` (`data`) has just been stored; `stored(i)` tells which others are. */
  add(index: number, data: Buffer, stored: (i: number) => boolean): void {
    if (index !== this.next) return;
    this.hash.update(data);
    this.next++;
    while (this.next < this.chunks && stored(this.next)) this.hash.update(this.read(this.next++));
  }

  /** The hex digest once every chunk has been hashed; undefined before. */
  digest(): string | undefined {
    return this.next >= this.chunks ? this.hash.digest('hex') : undefined;
  }
}
