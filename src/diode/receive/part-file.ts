/**
 * The part file of a file being received, written without holding the frame path: chunks
 * that follow each other are gathered into runs (up to RUN_BYTES) and each run is written in
 * the background (libuv's thread pool); a run still in memory or in flight is read back from
 * memory (the prefix hash reads chunks that came early, many at a time). `written` says which chunks are on
 * disk — what the saved chunk map may claim after an fdatasync (inbox.ts) — and the
 * descriptor is closed only once no write on it is pending (a closed descriptor's number is
 * reused: a late write would land in another file). A run's buffer is kept for the next
 * run once written: at 1 % loss every loss ends a run and every rebuilt chunk is a run of its
 * own, and a new 1 MiB buffer for each cost more in allocation and collection than the writes.
 */
import { closeSync, readSync, write, writeSync } from 'node:fs';
import { hasChunk, markChunks } from './chunk-bits.js';

/** The most a run gathers before it is written. */
const RUN_BYTES = 1 << 20;
/** A run not full after this long is written anyway (a file that trickles in). */
const RUN_MS = 100;
/**
 * Beyond this much waiting for the disk, a run is written in line: a disk slower than the link
 * then holds the frame path (the reader's queue fills, and the receiver counts itself
 * overloaded) instead of memory growing without bound.
 */
const MAX_PENDING_BYTES = 32 * 1024 * 1024;
/** Run buffers kept for reuse, at most (as many as MAX_PENDING_BYTES holds). */
const SPARE_RUNS = 32;

interface Run {
  first: number;
  count: number;
  bytes: number;
  data: Buffer;
  opened: number;
}

export class PartFile {
  /** Bitmap of the chunks whose writes have completed. */
  readonly written: Uint8Array;
  private open: Run | undefined;
  private readonly inFlight = new Set<Run>();
  private closing = false;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  /** Buffers of runs written, for the next runs. */
  private readonly spare: Buffer[] = [];
  /** What read() reads from the disk into. */
  private scratch = Buffer.alloc(0);
  /** Bytes gathered or being written, not yet on disk. */
  pendingBytes = 0;
  /** The first write that failed. */
  failed: NodeJS.ErrnoException | undefined;

  constructor(
    readonly fd: number,
    private readonly chunkBytes: number,
    private readonly size: number,
    chunks: number,
    /** A write failed (the file cannot complete: quarantine it). */
    private readonly onError: (err: NodeJS.ErrnoException) => void,
    written?: Uint8Array,
  ) {
    this.written = written ?? new Uint8Array(Math.ceil(chunks / 8));
  }

  /** Chunk `index` (`data`, its whole length) is to be written. */
  write(index: number, data: Buffer): void {
    const run = this.open;
    const runLength = Math.max(1, Math.floor(RUN_BYTES / this.chunkBytes));
    if (run && (run.first + run.count !== index || run.count >= runLength)) this.flush();
    if (!this.open)
      this.open = {
        first: index,
        count: 0,
        bytes: 0,
        data: this.spare.pop() ?? Buffer.allocUnsafe(runLength * this.chunkBytes),
        opened: performance.now(),
      };
    const r = this.open;
    data.copy(r.data, r.bytes);
    r.bytes += data.length;
    r.count++;
    this.pendingBytes += data.length;
  }

  /**
   * Chunks from `index` on, at most `most` of them, as one buffer: those that lie together
   * in one run still in memory, or on disk in one read (into a buffer reused by the next
   * call: use it before calling again). At least chunk `index`, which must be stored.
   */
  read(index: number, most = 1): { data: Buffer; count: number } {
    for (const run of [this.open, ...this.inFlight]) {
      if (!run || index < run.first || index >= run.first + run.count) continue;
      const count = Math.min(most, run.first + run.count - index);
      const at = (index - run.first) * this.chunkBytes;
      return { data: run.data.subarray(at, Math.min(run.bytes, at + count * this.chunkBytes)), count };
    }
    let count = 1;
    while (count < most && hasChunk(this.written, index + count)) count++;
    const length = Math.min(count * this.chunkBytes, this.size - index * this.chunkBytes);
    if (this.scratch.length < length) this.scratch = Buffer.allocUnsafe(Math.max(length, RUN_BYTES));
    const b = this.scratch.subarray(0, length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, b, done, length - done, index * this.chunkBytes + done);
      if (n === 0) throw new Error(`chunk ${index + Math.floor(done / this.chunkBytes)} is short on disk`);
      done += n;
    }
    return { data: b, count };
  }

  /** A run's buffer, its write done, kept for a next run (up to SPARE_RUNS of them). */
  private reuse(data: Buffer): void {
    if (this.spare.length < SPARE_RUNS) this.spare.push(data);
  }

  /** Starts writing the open run (writes it in line when too much already waits for the disk). */
  flush(): void {
    const run = this.open;
    if (!run) return;
    if (this.pendingBytes > MAX_PENDING_BYTES) {
      try {
        this.flushSync();
      } catch (err) {
        this.failed ??= err as NodeJS.ErrnoException;
        this.onError(this.failed);
      }
      return;
    }
    this.open = undefined;
    this.inFlight.add(run);
    const position = run.first * this.chunkBytes;
    const next = (done: number) => {
      write(this.fd, run.data, done, run.bytes - done, position + done, (err, n) => {
        if (!err && done + n < run.bytes && n > 0) return next(done + n);
        this.inFlight.delete(run);
        this.pendingBytes -= run.bytes;
        if (err || n === 0) {
          this.failed ??= err ?? Object.assign(new Error('short write'), { code: 'EIO' });
          this.onError(this.failed);
        } else markChunks(this.written, run.first, run.count);
        this.reuse(run.data);
        this.settled();
      });
    };
    next(0);
  }

  /** Writes a run that has waited RUN_MS; the receiver calls it every 100 ms. */
  tick(): void {
    if (this.open && performance.now() - this.open.opened >= RUN_MS) this.flush();
  }

  /** Resolves once everything handed over is on disk (or its write failed). */
  drained(): Promise<void> {
    this.flush();
    if (this.inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Writes what is gathered in line (shutting down); writes in flight finish on their own. */
  flushSync(): void {
    const run = this.open;
    if (!run) return;
    this.open = undefined;
    this.pendingBytes -= run.bytes;
    let done = 0;
    while (done < run.bytes)
      done += writeSync(this.fd, run.data, done, run.bytes - done, run.first * this.chunkBytes + done);
    markChunks(this.written, run.first, run.count);
    this.reuse(run.data);
  }

  /** Closes the descriptor, now or once the writes in flight are done; nothing gathered is written. */
  close(): void {
    if (this.open) this.pendingBytes -= this.open.bytes;
    this.open = undefined;
    this.closing = true;
    this.settled();
  }

  private settled(): void {
    if (this.inFlight.size > 0) return;
    for (const w of this.idleWaiters.splice(0)) w();
    if (this.closing && !this.closed) {
      this.closed = true;
      try {
        closeSync(this.fd);
      } catch {
        // already closed
      }
    }
  }
}
