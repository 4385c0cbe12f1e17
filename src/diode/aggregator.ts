/**
 * The packet aggregator: every frame of every session (TCP data, UDP, heartbeats) goes
 * through here onto the link. It numbers frames on the link (the sequence the receiver's
 * window filter and gap counter use), decides every `everyMs` how many extra copies the free
 * send buffer affords (copies.ts), spreads those copies in time, and hands everything to the
 * pacer. When the buffer passes its high-water mark it tells TCP sources to pause (so TCP's
 * own window slows the client) and calls them back once it has drained.
 */
import type { CopyPolicy } from './copies.js';
import { encodeHeader, type FrameType, HEADER_BYTES, type Importance, withCopyNumber } from './frame.js';
import { Pacer, type SendDatagram, WIRE_OVERHEAD_BYTES } from './pacer.js';

export interface AggregatorOptions {
  epoch: number;
  rateBitsPerSecond: number;
  /** Largest UDP payload on the link (1472 for a 1500-byte MTU). */
  datagramBytes: number;
  /** Capacity of the send buffer, in wire bytes. */
  queueBytes: number;
  copyPolicy: CopyPolicy;
  /** How often the free buffer is read and the copy count chosen (the paper: ~10 ms). */
  everyMs: number;
  /** Copy k of a frame leaves no earlier than k * spreadMs after the original. */
  spreadMs: number;
  send: SendDatagram;
  /** Bytes already handed to the socket but not yet taken by the kernel. */
  socketBacklog?: () => number;
}

export interface OutgoingFrame {
  type: FrameType;
  importance: Importance;
  session: number;
  seq: number;
  payload: Buffer;
  /** False for frames that never get copies (heartbeats). */
  copies?: boolean;
}

export interface AggregatorStats {
  frames: number;
  copiesScheduled: number;
  datagramsSent: number;
  copiesSent: number;
  payloadBytes: number;
  droppedBufferFull: number;
  /** Free fraction of the send buffer at the last reading. */
  free: number;
}

const HIGH_WATER = 0.75;
const LOW_WATER = 0.5;

export class Aggregator {
  readonly maxPayload: number;
  private readonly pacer: Pacer;
  private linkSeq = 0;
  private free = 1;
  private paused = false;
  private readonly timer: NodeJS.Timeout;
  private readonly drainListeners = new Set<() => void>();
  readonly stats: AggregatorStats = {
    frames: 0,
    copiesScheduled: 0,
    datagramsSent: 0,
    copiesSent: 0,
    payloadBytes: 0,
    droppedBufferFull: 0,
    free: 1,
  };

  constructor(private readonly options: AggregatorOptions) {
    this.maxPayload = options.datagramBytes - HEADER_BYTES;
    if (this.maxPayload < 64) throw new Error(`datagramBytes ${options.datagramBytes} is too small`);
    this.pacer = new Pacer({ rateBitsPerSecond: options.rateBitsPerSecond, send: options.send });
    this.pacer.onSent = () => this.checkDrained();
    this.timer = setInterval(() => this.readFree(), options.everyMs);
    this.timer.unref();
  }

  /** Fraction of the send buffer in use (our queue plus the socket's backlog). */
  used(): number {
    const backlog = this.options.socketBacklog?.() ?? 0;
    return (this.pacer.queuedBytes + backlog) / this.options.queueBytes;
  }

  /** True while there is room below the high-water mark; false tells the caller to pause. */
  hasRoom(): boolean {
    return this.used() < HIGH_WATER;
  }

  /** Calls `listener` each time the buffer drains below the low-water mark after being full. */
  onDrain(listener: () => void): () => void {
    this.drainListeners.add(listener);
    return () => this.drainListeners.delete(listener);
  }

  /** Queues a frame and its copies; returns hasRoom() afterwards. */
  submit(frame: OutgoingFrame): boolean {
    const header = encodeHeader(
      {
        type: frame.type,
        flags: 0,
        importance: frame.importance,
        copy: 0,
        epoch: this.options.epoch,
        linkSeq: this.linkSeq,
        session: frame.session,
        seq: frame.seq,
        block: 0,
        keyId: 0,
      },
      frame.payload.length,
    );
    this.linkSeq = (this.linkSeq + 1) >>> 0;
    this.stats.frames++;
    this.stats.payloadBytes += frame.payload.length;
    this.pacer.enqueue({ header, payload: frame.payload, due: 0 });
    const copies = frame.copies === false ? 0 : this.options.copyPolicy.copies(frame.importance, this.free);
    const now = performance.now();
    for (let k = 1; k <= copies; k++) {
      this.pacer.enqueue(
        { header: withCopyNumber(header, k), payload: frame.payload, due: now + k * this.options.spreadMs },
        k,
      );
    }
    this.stats.copiesScheduled += copies;
    const room = this.hasRoom();
    if (!room) this.paused = true;
    return room;
  }

  /** Queues a frame only if the buffer is not full (UDP: nothing to pause, so drop and count). */
  offer(frame: OutgoingFrame): boolean {
    const cost = HEADER_BYTES + frame.payload.length + WIRE_OVERHEAD_BYTES;
    if (this.pacer.queuedBytes + cost > this.options.queueBytes) {
      this.stats.droppedBufferFull++;
      return false;
    }
    this.submit(frame);
    return true;
  }

  /** Resolves once everything queued (copies included) has been sent. */
  flushed(): Promise<void> {
    if (this.pacer.pending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.pacer.onIdle = () => {
        this.pacer.onIdle = undefined;
        resolve();
      };
    });
  }

  close(): void {
    clearInterval(this.timer);
    this.pacer.stop();
  }

  snapshot(): AggregatorStats {
    this.stats.datagramsSent = this.pacer.sent;
    this.stats.copiesSent = this.pacer.sentCopies;
    this.stats.free = this.free;
    return { ...this.stats };
  }

  /** Datagrams handed to the socket so far (heartbeats report it to the receiver). */
  get datagramsSent(): number {
    return this.pacer.sent;
  }

  private readFree(): void {
    this.free = Math.max(0, 1 - this.used());
    this.checkDrained();
  }

  private checkDrained(): void {
    if (!this.paused || this.used() > LOW_WATER) return;
    this.paused = false;
    for (const listener of this.drainListeners) listener();
  }
}
