/**
 * The SHA-256 of a file whose chunks arrive in any order, computed as its in-order prefix
 * grows: a chunk that extends the prefix is hashed as it is stored, and chunks that came
 * early (after a loss FEC rebuilt later) are read back then, from the page cache, up to
 * READ_CHUNKS at a time: at 1 % loss nearly every chunk comes after a gap, and read one by one
 * they cost a system call and a buffer each. So checking a complete file costs only its last
 * chunks, not a second pass over all of it.
 */
import { createHash } from 'node:crypto';

/** Chunks read back in one call, at most (1 MiB of 1412-byte chunks). */
const READ_CHUNKS = 742;

/** Reads back stored chunks from `index` on, at most `most`: their bytes and how many they are (at least 1). */
export type ChunkReader = (index: number, most: number) => { data: Buffer; count: number };

export class PrefixHash {
  private readonly hash = createHash('sha256');
  private next = 0;

  constructor(
    private readonly chunks: number,
    /** Reads back a chunk that is already stored. */
    private readonly read: ChunkReader,
  ) {}

  /** Chunk `index` (`data`) has just been stored; `stored(i)` tells which others are. */
  add(index: number, data: Buffer, stored: (i: number) => boolean): void {
    if (index !== this.next) return;
    this.hash.update(data);
    this.next++;
    while (this.next < this.chunks && stored(this.next)) {
      let most = 1;
      while (most < READ_CHUNKS && this.next + most < this.chunks && stored(this.next + most)) most++;
      const { data, count } = this.read(this.next, most);
      this.hash.update(data);
      this.next += count;
    }
  }

  /** The hex digest once every chunk has been hashed; undefined before. */
  digest(): string | undefined {
    return this.next >= this.chunks ? this.hash.digest('hex') : undefined;
  }
}
