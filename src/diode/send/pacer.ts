/**
 * Sends datagrams at the configured link rate (a token bucket over wire bytes), originals in
 * order, and each extra copy no earlier than the time it was scheduled for, so that a short
 * burst of loss cannot take a frame and all its copies. A due copy goes before the next
 * original: it was only scheduled because there was capacity for it.
 *
 * The pacer never receives anything; it only calls `send`.
 */

import { WIRE_OVERHEAD_BYTES } from '../protocol/frame.js';

export interface Outgoing {
  header: Buffer;
  payload: Buffer;
  /** The authentication tag, shared by a frame and its copies (empty without auth). */
  tag?: Buffer;
  /** Not before this time (ms, the pacer's clock); 0 for originals. */
  due: number;
  /**
   * Made only when its turn comes (a heartbeat: the count of datagrams sent before it is then
   * exact); header and payload are placeholders of its expected size until then.
   */
  late?: () => Outgoing;
}

export type SendDatagram = (header: Buffer, payload: Buffer, tag?: Buffer) => void;

/** A queue with O(1) push and shift. */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  /** Puts `item` in place of the first one. */
  replaceFirst(item: T): void {
    if (this.head < this.items.length) this.items[this.head] = item;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

export interface PacerOptions {
  rateBitsPerSecond: number;
  /** Most bytes sent back to back after an idle moment; by default 10 ms at the rate, at most 256 KiB. */
  burstBytes?: number;
  send: SendDatagram;
  /** Called once after each turn's sends (the link writer hands its batch to the kernel). */
  flush?: () => void;
  now?: () => number;
}

/** The least burst: two full-size datagrams. */
const MIN_BURST_BYTES = 2 * 1600;
/** The catch-up burst unless configured: 10 ms of link time (late timers), at most 256 KiB. */
const DEFAULT_BURST_MS = 10;
const DEFAULT_BURST_MAX_BYTES = 256 * 1024;
/**
 * Most link time sent in one turn of the event loop. A catch-up burst larger than this goes
 * out in slices with the loop's other work (reading clients, FEC) in between: sent in one go
 * at 1 Gbit/s, a 10 ms burst starved it (25 % slower).
 */
const SLICE_MS = 2;

export class Pacer {
  private readonly originals = new Fifo<Outgoing>();
  /** One queue per copy number: within one the due times only grow. */
  private readonly copies: Fifo<Outgoing>[] = [];
  private bytesPerMs = 0;
  private burst = 0;
  private slice = 0;
  private continuing = false;
  private stopped = false;
  private readonly now: () => number;
  private tokens = 0;
  private last: number;
  private timer: NodeJS.Timeout | undefined;
  /** Bytes (wire) waiting to be sent: the send buffer the copy policy looks at. */
  queuedBytes = 0;
  sent = 0;
  sentCopies = 0;
  onIdle: (() => void) | undefined;
  onSent: (() => void) | undefined;

  constructor(private readonly options: PacerOptions) {
    this.setRate(options.rateBitsPerSecond, options.burstBytes);
    this.now = options.now ?? (() => performance.now());
    this.tokens = this.burst;
    this.last = this.now();
  }

  /** A new link rate, from the next datagram on (the sender's SIGHUP reload). */
  setRate(rateBitsPerSecond: number, burstBytes?: number): void {
    this.bytesPerMs = rateBitsPerSecond / 8 / 1000;
    this.burst =
      burstBytes ??
      Math.max(MIN_BURST_BYTES, Math.min(DEFAULT_BURST_MAX_BYTES, DEFAULT_BURST_MS * this.bytesPerMs));
    this.slice = Math.max(MIN_BURST_BYTES, SLICE_MS * this.bytesPerMs);
    this.tokens = Math.min(this.tokens, this.burst);
  }

  get pending(): number {
    return this.originals.length + this.copies.reduce((n, q) => n + q.length, 0);
  }

  enqueue(item: Outgoing, copyNumber = 0): void {
    if (copyNumber === 0) this.originals.push(item);
    else {
      while (this.copies.length < copyNumber) this.copies.push(new Fifo());
      this.copies[copyNumber - 1]!.push(item);
    }
    this.queuedBytes += wireBytes(item);
    this.schedule(0);
  }

  /** Sends what the tokens allow; returns when out of tokens or out of due datagrams. */
  pump(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.bytesPerMs);
    this.last = now;
    let sliced = 0;
    let sliceFull = false;
    for (;;) {
      const queue = this.nextQueue(now);
      let item = queue?.peek();
      if (!queue || !item) break;
      if (item.late) {
        const made = item.late();
        this.queuedBytes += wireBytes(made) - wireBytes(item);
        queue.replaceFirst(made);
        item = made;
      }
      const cost = wireBytes(item);
      if (this.tokens < cost) break;
      if (sliced >= this.slice) {
        sliceFull = true;
        break;
      }
      sliced += cost;
      queue.shift();
      this.tokens -= cost;
      this.queuedBytes -= cost;
      this.sent++;
      if (queue !== this.originals) this.sentCopies++;
      this.options.send(item.header, item.payload, item.tag);
    }
    if (sliced > 0) this.options.flush?.();
    this.onSent?.();
    if (sliceFull) {
      this.continueSoon();
      return;
    }
    if (this.pending === 0) {
      this.onIdle?.();
      return;
    }
    const next = this.nextQueue(now)?.peek();
    const wait = next
      ? Math.max(0, (wireBytes(next) - this.tokens) / this.bytesPerMs)
      : Math.max(0, this.earliestCopyDue() - now);
    this.schedule(wait);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.stopped = true;
  }

  /** The rest of a burst, after the event loop's other work of this turn. */
  private continueSoon(): void {
    if (this.continuing) return;
    this.continuing = true;
    setImmediate(() => {
      this.continuing = false;
      if (!this.stopped) this.pump();
    });
  }

  /** The queue to send from now: the one with the earliest due copy if any is due, else the originals. */
  private nextQueue(now: number): Fifo<Outgoing> | undefined {
    let best: Fifo<Outgoing> | undefined;
    let bestDue = Number.POSITIVE_INFINITY;
    for (const q of this.copies) {
      const due = q.peek()?.due ?? Number.POSITIVE_INFINITY;
      if (due <= now && due < bestDue) {
        best = q;
        bestDue = due;
      }
    }
    return best ?? (this.originals.length > 0 ? this.originals : undefined);
  }

  private earliestCopyDue(): number {
    return Math.min(...this.copies.map((q) => q.peek()?.due ?? Number.POSITIVE_INFINITY));
  }

  private schedule(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, ms);
  }
}

export function wireBytes(item: Outgoing): number {
  return item.header.length + item.payload.length + (item.tag?.length ?? 0) + WIRE_OVERHEAD_BYTES;
}
