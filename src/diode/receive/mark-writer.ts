/**
 * Writes the epoch mark (epoch-mark.ts) ahead of need in a thread of its own, so the frame
 * path does not wait on the disk: an fsync of the mark waits for the journal, which under a
 * file being written at 1 Gbit/s takes 100 ms or more. A frame that reaches the mark while a
 * write is under way waits for that write in line (Atomics.wait): a frame past the mark is
 * never taken before the mark that covers it is on disk. Writes land in the order given.
 */
import type { Worker } from 'node:worker_threads';
import { diodeLog as log } from '../../shared/log.js';
import { ext, startWorker } from '../../shared/worker.js';
import type { EpochMark } from './epoch-mark.js';

/** How long a frame waits for a mark being written before it is refused. */
const WAIT_MS = 10_000;

export class MarkWriter {
  private readonly shared = new SharedArrayBuffer(8);
  /** [0] the last ticket done, [1] the last ticket that failed. */
  private readonly state = new Int32Array(this.shared);
  private worker: Worker;
  private closed = false;
  private ticket = 0;
  private pending: { ticket: number; mark: EpochMark } | undefined;
  /** The failure of the last write, if it failed (the caller clears it). */
  lastError: string | undefined;

  constructor(private readonly file: string) {
    this.worker = this.startThread();
  }

  /**
   * The writer's thread. One that dies fails the write under way (its frames wait for the next
   * mark) and is replaced.
   */
  private startThread(): Worker {
    const worker = startWorker(new URL(`./mark-writer-worker${ext}`, import.meta.url), {
      workerData: { shared: this.shared },
    });
    worker.on('message', (m: { ticket: number; error: string }) => {
      this.lastError = m.error;
    });
    worker.on('error', (err) => log.error({ err }, 'epoch mark writer failed'));
    worker.on('exit', (code) => {
      if (this.closed) return;
      log.error({ code }, 'epoch mark writer exited; a new one takes over');
      if (this.pending) {
        Atomics.store(this.state, 1, this.pending.ticket);
        Atomics.store(this.state, 0, this.pending.ticket);
      }
      this.worker = this.startThread();
    });
    // After the listeners: a 'message' listener refs the thread again.
    worker.unref();
    return worker;
  }

  /** A write is under way (call settle() first to take one that finished). */
  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** Starts writing `mark` (none must be under way). */
  write(mark: EpochMark): void {
    this.pending = { ticket: ++this.ticket, mark };
    this.worker.postMessage({ ticket: this.ticket, file: this.file, mark });
  }

  /**
   * The mark under way, once written: waits for it here. Returns it, or undefined when the
   * write failed (`lastError`) or took longer than WAIT_MS.
   */
  wait(): EpochMark | undefined {
    const p = this.pending;
    if (!p) return undefined;
    const until = performance.now() + WAIT_MS;
    for (let done = Atomics.load(this.state, 0); done < p.ticket; done = Atomics.load(this.state, 0)) {
      const left = until - performance.now();
      if (left <= 0) return undefined;
      Atomics.wait(this.state, 0, done, left);
    }
    return this.take(p);
  }

  /** The mark last written, if a write finished since the last call (then none is under way). */
  settle(): EpochMark | undefined {
    const p = this.pending;
    if (!p || Atomics.load(this.state, 0) < p.ticket) return undefined;
    return this.take(p);
  }

  close(): void {
    this.closed = true;
    void this.worker.terminate();
  }

  private take(p: { ticket: number; mark: EpochMark }): EpochMark | undefined {
    this.pending = undefined;
    if (Atomics.load(this.state, 1) === p.ticket) {
      this.lastError ??= 'the write failed';
      return undefined;
    }
    return p.mark;
  }
}
