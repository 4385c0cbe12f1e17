/**
 * The sender's writes to the link socket in batches: what the pacer releases in one turn is
 * copied into a batch and handed to the kernel with one sendmmsg (shared/mmsg.ts) at the end
 * of the turn (or when BATCH are waiting), instead of a system call and a libuv request per
 * datagram. The pacer decides when each datagram may go, so pacing is what it was; a batch
 * only leaves together what the pacer released together.
 *
 * When the kernel cannot take more (the socket's send buffer full: EAGAIN) the rest waits
 * here, in order, and is tried again shortly; `backlogBytes` counts it as the socket's own
 * backlog (the copy policy and back-pressure read it). Any other error drops that datagram,
 * counted (`errors`) and logged once.
 */
import { diodeLog as log } from '../../shared/log.js';
import { DatagramBatch, EAGAIN, EINTR, errnoMessage } from '../../shared/mmsg.js';
import { Fifo } from './pacer.js';

const BATCH = 64;
const RETRY_MS = 1;

export class LinkWriter {
  private readonly batch: DatagramBatch;
  private count = 0;
  private readonly overflow = new Fifo<Buffer>();
  private retry: NodeJS.Timeout | undefined;
  private logged = false;
  /** Bytes handed over and not yet taken by the kernel. */
  backlogBytes = 0;
  errors = 0;
  /** Datagrams taken by the kernel, and the system calls that took them. */
  sent = 0;
  calls = 0;

  constructor(
    private readonly fd: number,
    maxDatagramBytes: number,
  ) {
    this.batch = new DatagramBatch(BATCH, maxDatagramBytes);
  }

  /** Queues a datagram (header, payload, tag: copied now); it leaves at the next flush. */
  send(header: Buffer, payload: Buffer, tag?: Buffer): void {
    const length = header.length + payload.length + (tag?.length ?? 0);
    this.backlogBytes += length;
    if (this.count === BATCH || this.overflow.length > 0) {
      if (this.count === BATCH) this.flush();
      if (this.count === BATCH || this.overflow.length > 0) {
        this.overflow.push(Buffer.concat(tag ? [header, payload, tag] : [header, payload]));
        return;
      }
    }
    const slot = this.batch.slot(this.count);
    header.copy(slot, 0);
    payload.copy(slot, header.length);
    tag?.copy(slot, header.length + payload.length);
    this.batch.setLength(this.count++, length);
  }

  /** Hands what is queued to the kernel; what it refuses for now is tried again in RETRY_MS. */
  flush(): void {
    for (;;) {
      this.refill();
      if (this.count === 0) return;
      const n = this.batch.send(this.fd, 0, this.count);
      this.calls++;
      if (n === -EAGAIN || n === -EINTR) {
        this.retryLater();
        return;
      }
      const taken = n > 0 ? n : 1; // an error is the first datagram's: it is dropped
      if (n < 0) this.failed(-n);
      else this.sent += n;
      for (let i = 0; i < taken; i++) this.backlogBytes -= this.batch.lengthOf(i);
      this.shift(taken);
    }
  }

  close(): void {
    if (this.retry) clearTimeout(this.retry);
  }

  /** Moves the first `n` slots out: the rest to the front. */
  private shift(n: number): void {
    for (let i = n; i < this.count; i++) {
      const len = this.batch.lengthOf(i);
      this.batch.slot(i).copy(this.batch.slot(i - n), 0, 0, len);
      this.batch.setLength(i - n, len);
    }
    this.count -= n;
  }

  /** Datagrams that waited for room go into the batch first, in order. */
  private refill(): void {
    while (this.count < BATCH && this.overflow.length > 0) {
      const d = this.overflow.shift()!;
      d.copy(this.batch.slot(this.count), 0);
      this.batch.setLength(this.count++, d.length);
    }
  }

  private retryLater(): void {
    if (this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.flush();
    }, RETRY_MS);
  }

  private failed(errno: number): void {
    this.errors++;
    if (this.logged) return;
    this.logged = true;
    log.warn(
      { errno, err: errnoMessage(errno) },
      'link socket error: the datagram is dropped (counted in sendErrors)',
    );
  }
}
