/**
 * The receiver's link socket, read by a thread of its own (link-reader-worker.ts) in batches
 * (recvmmsg): the main thread — frame checks, FEC, files, TCP — can pause (a collection, a
 * decode, a slow disk) without the kernel's socket buffer overflowing, because the reader
 * keeps draining it into its queue meanwhile. Each batch reaches `onBatch` on the main thread,
 * in arrival order. With a key file the reader also checks each datagram's tag, off the main
 * thread (a verdict per datagram comes with the batch).
 *
 * What the receiver loses itself is counted apart from what the link loses:
 *  - `kernelDrops`: datagrams the kernel dropped on the socket, its buffer full (SO_MEMINFO);
 *    the reader thread was not scheduled in time, or the buffer is too small for the rate;
 *  - `queueDrops`: datagrams the reader dropped because the main thread was `queueBytes`
 *    behind: frames the receiver could not process in time.
 * The peaks of both buffers tell how close it came.
 */
import type { Worker } from 'node:worker_threads';
import { diodeLog as log } from '../../shared/log.js';
import { wakeBatchSocket } from '../../shared/mmsg.js';
import { rmemMax } from '../../shared/socket-options.js';
import { ext, startWorker } from '../../shared/worker.js';

/** Indexes of the counters the reader thread keeps in shared memory (Float64, after the flags). */
export const SHARED = {
  datagrams: 0,
  bytes: 1,
  batches: 2,
  kernelDrops: 3,
  queueDrops: 4,
  socketPeak: 5,
  queuePeak: 6,
  count: 7,
} as const;

export interface LinkReaderSetup {
  /** Tags are checked by the reader when given (the verdicts come with each batch). */
  keyFile?: string;
  host: string;
  port: number;
  receiveBufferBytes: number;
  maxDatagramBytes: number;
  queueBytes: number;
  batch: number;
  shared: SharedArrayBuffer;
}

export interface ReceiveBuffer {
  requested: number;
  /** What the kernel granted (it reports double what was set, for its own bookkeeping). */
  effective: number;
  rmemMax: number;
  forced: boolean;
  /** True when the socket got less than asked for. */
  short: boolean;
}

export interface LinkReaderStats {
  datagrams: number;
  bytes: number;
  batches: number;
  kernelDrops: number;
  queueDrops: number;
  /** The most the kernel held for this socket at once, in its accounting (compare with receiveBuffer.effective). */
  socketPeakBytes: number;
  /** The most the main thread was behind the reader, in bytes (compare with queueBytes). */
  queuePeakBytes: number;
  queueBytes: number;
}

const BATCH = 64;

export class LinkReader {
  private worker: Worker | undefined;
  private fd: number | undefined;
  private readonly shared = new SharedArrayBuffer(16 + SHARED.count * 8);
  private readonly flags = new Int32Array(this.shared, 0, 2);
  private readonly consumed = new BigInt64Array(this.shared, 8, 1);
  private readonly counters = new Float64Array(this.shared, 16, SHARED.count);
  receiveBuffer: ReceiveBuffer | undefined;
  /** The port bound (the configured one, or the kernel's pick for 0). */
  port: number | undefined;

  constructor(
    private readonly options: Omit<LinkReaderSetup, 'shared' | 'batch'> & {
      /** A batch in arrival order; `verdicts[i]`: datagram i's tag check (auth.ts verdictOf). */
      onBatch(datagrams: Buffer[], verdicts: Uint8Array): void;
    },
  ) {}

  /** Opens and binds the socket in the reader thread; rejects with the reason it could not. */
  start(): Promise<ReceiveBuffer> {
    return new Promise((resolve, reject) => this.spawn(resolve, reject));
  }

  /**
   * The reader thread. One that dies after its start (an error it did not expect) is started
   * again on the same port a second later: a receiver whose reader is gone hears nothing.
   */
  private spawn(resolve: (rb: ReceiveBuffer) => void, reject: (err: Error) => void): void {
    const { onBatch, ...rest } = this.options;
    const setup: LinkReaderSetup = {
      ...rest,
      port: this.port ?? rest.port,
      batch: BATCH,
      shared: this.shared,
    };
    const worker = startWorker(new URL(`./link-reader-worker${ext}`, import.meta.url), { workerData: setup });
    this.worker = worker;
    let ready = false;
    let failure: string | undefined;
    worker.on('message', (m) => {
      switch (m.type) {
        case 'batch':
          this.deliver(m.data, m.lengths, m.verdicts);
          break;
        case 'ready':
          ready = true;
          this.fd = m.fd;
          this.port = m.port;
          this.receiveBuffer = this.report(m.receiveBuffer);
          resolve(this.receiveBuffer);
          break;
        case 'resized':
          this.receiveBuffer = this.report(m.receiveBuffer);
          log.info({ ...this.receiveBuffer }, 'receive buffer resized');
          break;
        case 'error':
          failure = m.message;
          break;
        case 'failed':
          log.error({ err: m.message }, 'link socket error');
      }
    });
    worker.on('error', (err) => {
      failure = err.message;
    });
    worker.on('exit', () => {
      if (Atomics.load(this.flags, 0) !== 0) return;
      if (!ready) {
        reject(new Error(failure ?? 'the link reader thread ended before its socket was open'));
        return;
      }
      log.error({ err: failure }, 'link reader thread died: started again in 1 s');
      this.fd = undefined;
      // What the old thread posted has all been delivered before its exit.
      Atomics.store(this.consumed, 0, 0n);
      setTimeout(() => {
        if (Atomics.load(this.flags, 0) === 0)
          this.spawn(
            () => log.info({ port: this.port }, 'link reader started again'),
            (err) => log.error({ err }, 'link reader could not be started again'),
          );
      }, 1000).unref();
    });
  }

  /** Asks for a receive buffer of `bytes` (forced beyond rmem_max as root). */
  resize(bytes: number): void {
    this.worker?.postMessage({ type: 'resize', bytes });
  }

  stats(): LinkReaderStats {
    const c = this.counters;
    return {
      datagrams: c[SHARED.datagrams]!,
      bytes: c[SHARED.bytes]!,
      batches: c[SHARED.batches]!,
      kernelDrops: c[SHARED.kernelDrops]!,
      queueDrops: c[SHARED.queueDrops]!,
      socketPeakBytes: c[SHARED.socketPeak]!,
      queuePeakBytes: c[SHARED.queuePeak]!,
      queueBytes: this.options.queueBytes,
    };
  }

  /** Has the reader re-read the key file now (SIGHUP; it does so every second anyway). */
  reloadKeys(): void {
    this.worker?.postMessage({ type: 'reload' });
  }

  /** Stops the reader thread; it closes the socket as it ends. */
  close(): void {
    Atomics.store(this.flags, 0, 1);
    if (this.fd !== undefined) wakeBatchSocket(this.fd);
    this.worker?.unref();
  }

  private deliver(data: Uint8Array, lengths: Uint32Array, verdicts: Uint8Array): void {
    const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const datagrams: Buffer[] = new Array(lengths.length);
    for (let i = 0, at = 0; i < lengths.length; i++) {
      datagrams[i] = buffer.subarray(at, at + lengths[i]!);
      at += lengths[i]!;
    }
    try {
      this.options.onBatch(datagrams, verdicts);
    } finally {
      Atomics.add(this.consumed, 0, BigInt(data.byteLength));
    }
  }

  private report(r: { requested: number; effective: number; forced: boolean }): ReceiveBuffer {
    return { ...r, rmemMax: rmemMax(), short: r.effective < r.requested };
  }
}
