/**
 * The packet aggregator: every frame of every session (TCP data, UDP, heartbeats) goes
 * through here onto the link. It numbers frames on the link (the sequence the receiver's
 * window filter and gap counter use), decides every `everyMs` how many extra copies the free
 * send buffer affords (copies.ts), spreads those copies in time, and hands everything to the
 * pacer. When the buffer passes its high-water mark it tells TCP sources to pause (so TCP's
 * own window slows the client) and calls them back once it has drained.
 *
 * With a key ring every frame gets a tag (auth.ts); with FEC every original frame is also a
 * source symbol of the open block (fec.ts), and the block's repair symbols follow as repair
 * frames, numbered in a sequence of their own so that source blocks stay contiguous.
 *
 * Neither sequence wraps: before either reaches `seqLimit` (frame.ts SEQ_LIMIT, 2^28 frames
 * short of 2^32) the aggregator starts a new epoch (`newEpoch`: the sender's, kept on disk)
 * and both start again at 0. The open FEC block is closed first; repairs of a block of the
 * old epoch that come back after the change are not sent (the receiver, with auth, refuses
 * the old epoch once it heard the new one). Sessions in flight at the change are reset by the
 * receiver, as after a sender restart; at 1 Gbit/s this happens about every 6 hours.
 */
import { diodeLog as log } from '../../shared/log.js';
import { type KeyRing, TAG_BYTES } from '../protocol/auth.js';
import { FecEncoder, type FecEncoderOptions, type FecEncoderStats } from '../protocol/fec.js';
import { type FecCode, repairType } from '../protocol/fec-code.js';
import {
  encodeHeader,
  FrameFlag,
  type FrameType,
  HEADER_BYTES,
  Importance,
  SEQ_LIMIT,
  SYMBOL_HEADER_BYTES,
  WIRE_OVERHEAD_BYTES,
  withCopyNumber,
} from '../protocol/frame.js';
import type { CopyPolicy } from './copies.js';
import { Pacer, type SendDatagram } from './pacer.js';

export interface AggregatorOptions {
  epoch: number;
  /** A new epoch (persisted, above every earlier one), when the sequences near seqLimit. Default epoch + 1. */
  newEpoch?: () => number;
  /** Sequences stay below this within an epoch (tests lower it). Default SEQ_LIMIT. */
  seqLimit?: number;
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
  /** Called after each turn of sends (the link writer's batch). */
  flush?: () => void;
  /** Bytes already handed to the socket but not yet taken by the kernel. */
  socketBacklog?: () => number;
  /** Most ms of link time the pacer may catch up on at once after a late timer (pacer.ts has the default). */
  burstMs?: number;
  /** Signs every frame. */
  auth?: KeyRing;
  /** FEC over blocks of frames (symbol size and repair callback are the aggregator's). */
  fec?: Omit<FecEncoderOptions, 'symbolBytes' | 'onRepairs'>;
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
  repairFrames: number;
  /** Epochs started because a sequence neared its limit. */
  epochChanges: number;
  /** Repairs of a block of an earlier epoch, not sent. */
  repairsDropped: number;
  fec: FecEncoderStats | null;
}

/** A new epoch starts this far below the sequence limit (repairs of blocks in flight still fit). */
const SEQ_MARGIN = 1 << 20;

const HIGH_WATER = 0.75;
const LOW_WATER = 0.5;
/**
 * Blocks waiting for their repairs, at most, before sources pause: repairs that trail their
 * sources by more reach the receiver after it gave the block up.
 */
const MAX_ENCODE_BACKLOG = 2;

/** The FEC symbol size for a datagram size: what is left after header and tag, a multiple of 8. */
export function symbolBytesFor(datagramBytes: number, tagBytes: number): number {
  return Math.floor((datagramBytes - HEADER_BYTES - tagBytes) / 8) * 8;
}

/** The largest payload of a frame: what is left of a datagram after header and tag (with FEC, of a symbol after its header). */
export function maxPayloadFor(datagramBytes: number, auth: boolean, fec: boolean): number {
  const tag = auth ? TAG_BYTES : 0;
  return fec ? symbolBytesFor(datagramBytes, tag) - SYMBOL_HEADER_BYTES : datagramBytes - HEADER_BYTES - tag;
}

export class Aggregator {
  readonly maxPayload: number;
  private readonly pacer: Pacer;
  private readonly fec: FecEncoder | undefined;
  private linkSeq = 0;
  private repairSeq = 0;
  /** The epoch frames are numbered in now. */
  epoch: number;
  private readonly seqLimit: number;
  private free = 1;
  private paused = false;
  private readonly timer: NodeJS.Timeout;
  private readonly drainListeners = new Set<() => void>();
  /** Callers of flushed() waiting for the pacer to run dry (any number at once). */
  private readonly flushWaiters: (() => void)[] = [];
  readonly stats: AggregatorStats = {
    frames: 0,
    copiesScheduled: 0,
    datagramsSent: 0,
    copiesSent: 0,
    payloadBytes: 0,
    droppedBufferFull: 0,
    free: 1,
    repairFrames: 0,
    epochChanges: 0,
    repairsDropped: 0,
    fec: null,
  };

  constructor(private readonly options: AggregatorOptions) {
    const tag = options.auth ? TAG_BYTES : 0;
    this.epoch = options.epoch;
    this.seqLimit = options.seqLimit ?? SEQ_LIMIT;
    this.maxPayload = maxPayloadFor(options.datagramBytes, !!options.auth, !!options.fec);
    if (this.maxPayload < 64) throw new Error(`datagramBytes ${options.datagramBytes} is too small`);
    if (options.fec) {
      this.fec = new FecEncoder({
        ...options.fec,
        symbolBytes: symbolBytesFor(options.datagramBytes, tag),
        onRepairs: (block) => {
          if (block.tag !== this.epoch) {
            this.stats.repairsDropped += block.repairs.length;
            return;
          }
          for (const x of block.repairs)
            this.sendRepair(block.code, block.first, block.k, block.r, x.esi, x.symbol);
          this.checkDrained();
        },
      });
    }
    this.pacer = new Pacer({
      rateBitsPerSecond: options.rateBitsPerSecond,
      send: options.send,
      ...(options.flush ? { flush: options.flush } : {}),
      ...this.burstFor(options.rateBitsPerSecond),
    });
    this.pacer.onSent = () => this.checkDrained();
    this.pacer.onIdle = () => {
      for (const resolve of this.flushWaiters.splice(0)) resolve();
    };
    this.timer = setInterval(() => this.readFree(), options.everyMs);
    this.timer.unref();
  }

  private burstFor(rateBitsPerSecond: number): { burstBytes?: number } {
    const ms = this.options.burstMs;
    return ms ? { burstBytes: Math.max(3200, (ms * rateBitsPerSecond) / 8000) } : {};
  }

  /** Paces at a new link rate from the next datagram on (`tacmesh diode send` re-reads it on SIGHUP). */
  setRate(rateBitsPerSecond: number): void {
    this.pacer.setRate(rateBitsPerSecond, this.burstFor(rateBitsPerSecond).burstBytes);
  }

  /** Fraction of the send buffer in use (our queue plus the socket's backlog). */
  used(): number {
    const backlog = this.options.socketBacklog?.() ?? 0;
    return (this.pacer.queuedBytes + backlog) / this.options.queueBytes;
  }

  /**
   * True while there is room below the high-water mark and the FEC encoder is keeping up;
   * false tells the caller to pause.
   */
  hasRoom(): boolean {
    return this.used() < HIGH_WATER && (this.fec?.backlog ?? 0) < MAX_ENCODE_BACKLOG;
  }

  /** Calls `listener` each time the buffer drains below the low-water mark after being full. */
  onDrain(listener: () => void): () => void {
    this.drainListeners.add(listener);
    return () => this.drainListeners.delete(listener);
  }

  /** Queues a frame and its copies; returns hasRoom() afterwards. */
  submit(frame: OutgoingFrame): boolean {
    const { header, tag } = this.number(frame);
    this.pacer.enqueue({ header, payload: frame.payload, tag, due: 0 });
    const copies = frame.copies === false ? 0 : this.options.copyPolicy.copies(frame.importance, this.free);
    const now = performance.now();
    for (let k = 1; k <= copies; k++) {
      this.pacer.enqueue(
        {
          header: withCopyNumber(header, k),
          payload: frame.payload,
          tag,
          due: now + k * this.options.spreadMs,
        },
        k,
      );
    }
    this.stats.copiesScheduled += copies;
    const room = this.hasRoom();
    if (!room) this.paused = true;
    return room;
  }

  /**
   * Queues a frame without copies that is made only when its turn comes, after every frame
   * queued before it has been sent (`make` is then called with the datagrams sent so far:
   * a heartbeat's count is exact, whatever copies went ahead of it). It takes its link sequence
   * and FEC block then. `payloadBytes`: its expected size, for the buffer's accounting.
   */
  submitLate(make: (datagramsSent: number) => OutgoingFrame, payloadBytes: number): void {
    const tag = this.options.auth ? TAG_BYTES : 0;
    this.pacer.enqueue({
      header: Buffer.alloc(HEADER_BYTES),
      payload: Buffer.alloc(payloadBytes + tag),
      due: 0,
      late: () => {
        const frame = make(this.pacer.sent);
        const { header, tag } = this.number(frame);
        return { header, payload: frame.payload, tag, due: 0 };
      },
    });
  }

  /** Numbers a frame on the link: its link sequence, FEC block (and symbol), header and tag. */
  private number(frame: OutgoingFrame): { header: Buffer; tag: Buffer | undefined } {
    if (frame.payload.length > this.maxPayload)
      throw new RangeError(`payload of ${frame.payload.length} bytes exceeds ${this.maxPayload}`);
    const margin = Math.min(SEQ_MARGIN, this.seqLimit / 4);
    if (this.linkSeq >= this.seqLimit - margin || this.repairSeq >= this.seqLimit - margin) this.nextEpoch();
    const linkSeq = this.linkSeq;
    const block = this.fec ? this.fec.blockFor(linkSeq, this.epoch) : 0;
    const numbered = this.header(
      frame.type,
      frame.importance,
      linkSeq,
      frame.session,
      frame.seq,
      block,
      frame.payload,
    );
    this.fec?.add(numbered.header, frame.payload);
    this.linkSeq++;
    this.stats.frames++;
    this.stats.payloadBytes += frame.payload.length;
    return numbered;
  }

  /** Starts a new epoch: the open FEC block closes, both sequences start again at 0. */
  private nextEpoch(): void {
    this.fec?.close();
    const old = this.epoch;
    this.epoch = this.options.newEpoch?.() ?? old + 1;
    this.linkSeq = 0;
    this.repairSeq = 0;
    this.stats.epochChanges++;
    log.info({ old, epoch: this.epoch }, 'new epoch: the link sequence neared its limit');
  }

  /** Header (and tag) of a frame; flags, key id and tag length follow from auth and FEC. */
  private header(
    type: FrameType,
    importance: Importance,
    linkSeq: number,
    session: number,
    seq: number,
    block: number,
    payload: Buffer,
  ): { header: Buffer; tag: Buffer | undefined } {
    const auth = this.options.auth;
    const keyId = auth?.signingId ?? 0;
    const flags = (auth ? FrameFlag.Authenticated : 0) | (this.fec ? FrameFlag.Fec : 0);
    const header = encodeHeader(
      { type, flags, importance, copy: 0, epoch: this.epoch, linkSeq, session, seq, block, keyId },
      payload.length,
      auth ? TAG_BYTES : 0,
    );
    return { header, tag: auth?.tag(keyId, header, payload) };
  }

  /** A repair frame: its own sequence; session = K << 16 | R, seq = symbol id, block = first source. */
  private sendRepair(code: FecCode, first: number, k: number, r: number, esi: number, symbol: Buffer): void {
    if (this.repairSeq >= this.seqLimit) {
      this.stats.repairsDropped++;
      return;
    }
    const { header, tag } = this.header(
      repairType(code),
      Importance.High,
      this.repairSeq,
      ((k << 16) | r) >>> 0,
      esi,
      first,
      symbol,
    );
    this.repairSeq++;
    this.stats.repairFrames++;
    this.pacer.enqueue({ header, payload: symbol, tag, due: 0 });
  }

  /** Queues a frame only if the buffer is not full (UDP: nothing to pause, so drop and count). */
  offer(frame: OutgoingFrame): boolean {
    const cost =
      HEADER_BYTES + frame.payload.length + WIRE_OVERHEAD_BYTES + (this.options.auth ? TAG_BYTES : 0);
    if (
      this.pacer.queuedBytes + cost > this.options.queueBytes ||
      (this.fec?.backlog ?? 0) > MAX_ENCODE_BACKLOG
    ) {
      this.stats.droppedBufferFull++;
      return false;
    }
    this.submit(frame);
    return true;
  }

  /** Resolves once everything queued (copies and the open FEC block's repairs included) has been sent. */
  async flushed(): Promise<void> {
    await this.fec?.idle();
    if (this.pacer.pending === 0) return;
    return new Promise((resolve) => this.flushWaiters.push(resolve));
  }

  close(): void {
    clearInterval(this.timer);
    this.pacer.stop();
    void this.fec?.stop();
  }

  snapshot(): AggregatorStats {
    this.stats.datagramsSent = this.pacer.sent;
    this.stats.copiesSent = this.pacer.sentCopies;
    this.stats.free = this.free;
    this.stats.fec = this.fec ? { ...this.fec.stats } : null;
    return { ...this.stats };
  }

  /** Datagrams queued and not yet sent. */
  get pending(): number {
    return this.pacer.pending;
  }

  private readFree(): void {
    this.free = Math.max(0, 1 - this.used());
    this.checkDrained();
  }

  private checkDrained(): void {
    if (!this.paused || this.used() > LOW_WATER || (this.fec?.backlog ?? 0) >= MAX_ENCODE_BACKLOG) return;
    this.paused = false;
    for (const listener of this.drainListeners) listener();
  }
}
