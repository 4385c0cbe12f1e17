/**
 * The receiver's TCP sender proxy (the paper's "TCP sender proxy": it plays the source
 * towards the real destination). On a session's open frame it connects to the destination
 * the frame names, buffers until connected, and delivers data strictly in order; on the
 * close frame it ends the connection cleanly.
 *
 * Nothing is delivered unless proven complete: if a frame of a session is still missing
 * `gapTimeoutMs` after the receiver learnt it exists (a later frame, or the sender's
 * heartbeat), no copy can repair it any more, and the destination connection is reset
 * (RST) — never ended with a hole. The destination socket has SO_LINGER 0 from the start,
 * so even a receiver killed mid-stream resets its connections instead of ending them.
 *
 * Sessions from the sender's spool name their origin in the open frame (session-origin.ts):
 * one is delivered once — the first round that arrives whole — and its other rounds, and
 * replays after a sender restart, are ignored (counted). A round of a session still being
 * received from an older round that lacks frames supersedes it: the older is reset. With
 * `tcp.store` a session is held on disk until delivered (tcp-spool.ts).
 */
import { createHash, type Hash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { diodeLog as log } from '../../shared/log.js';
import { setAbortiveClose } from '../../shared/socket-options.js';
import type { AuditLog } from '../audit.js';
import type { RecvConfig } from '../config.js';
import { SpoolFullError } from '../disk.js';
import { decodeOpen, type Frame, FrameType, type OpenPayload } from '../protocol/frame.js';
import type { Heartbeat } from '../protocol/heartbeat.js';
import { roundOf, type SessionRound } from '../protocol/session-origin.js';
import type { DeliveredOrigins, HeldSession, ReceiverSpool } from './tcp-spool.js';

export type AbortReason =
  | 'gap'
  | 'out-of-window'
  | 'client-aborted'
  | 'bad-open'
  | 'not-allowed'
  | 'destination-failed'
  | 'destination-slow'
  | 'sender-forgot'
  | 'sender-gone'
  | 'link-down'
  | 'superseded'
  | 'disk-full'
  | 'spool-failed'
  | 'shutdown';

/** retrying: held in the spool, waiting to connect to the destination again. */
type SinkState = 'waiting' | 'connecting' | 'open' | 'ending' | 'retrying';

interface Sink {
  epoch: number;
  id: number;
  state: SinkState;
  /** Next sequence to deliver (0 = the open frame). */
  next: number;
  pending: Map<number, Frame>;
  /** Highest sequence known to exist (from frames or heartbeats). */
  knownLast: number;
  finalSeq?: number;
  gap?: { seq: number; since: number };
  socket?: Socket;
  destination?: string;
  open?: OpenPayload;
  round?: SessionRound;
  /** Every frame up to the close has been taken: nothing more is needed from the link. */
  whole: boolean;
  held?: HeldSession;
  /** Held in the spool by a previous run of the receiver. */
  fromSpool: boolean;
  /** Waiting for the destination to drain before more is read from the spool. */
  draining: boolean;
  /** SHA-256 of what was delivered (without the spool; the spool has its own). */
  hash?: Hash;
  delivered: number;
  opened: number;
}

export interface TcpCounters {
  sessions: number;
  completed: number;
  aborted: number;
  abortReasons: Partial<Record<AbortReason, number>>;
  deliveredBytes: number;
  /** Frames of a session that were already delivered (copies that slipped past the link dedup). */
  lateDuplicates: number;
  /** Frames too far ahead of the next one to deliver. */
  outOfWindow: number;
  /** Frames of sessions that have already ended (ignored rounds included). */
  afterEnd: number;
  /** Rounds of a session already delivered or being delivered, not delivered again. */
  roundsIgnored: number;
  /** Sessions delivered from the spool after a restart of the receiver. */
  deliveredFromSpool: number;
  /** Connections to the destination tried again for a session held in the spool. */
  retries: number;
  /** Frames of new sessions refused because tcp.maxSessions were held already. */
  refusedTooMany: number;
}

export interface TcpSourceOptions {
  /** Holds sessions on disk until delivered (`tcp.store`). */
  spool?: { spool: ReceiverSpool; retryMs: number };
  /** Sessions delivered, by origin. */
  delivered?: DeliveredOrigins;
  audit?: AuditLog;
  now?: () => number;
}

const SPOOL_READ_BYTES = 256 * 1024;

const TOMBSTONE_MS = 60_000;
const MAX_TOMBSTONES = 65_536;
/** Frames held out of order by all sessions together (at least 4 × maxReorderFrames). */
const MAX_PENDING_FRAMES = 65_536;

export class TcpSourceProxy {
  private readonly sinks = new Map<number, Map<number, Sink>>();
  private readonly ended = new Map<number, Map<number, number>>();
  private readonly allow: Set<string> | undefined;
  readonly counters: TcpCounters = {
    sessions: 0,
    completed: 0,
    aborted: 0,
    abortReasons: {},
    deliveredBytes: 0,
    lateDuplicates: 0,
    outOfWindow: 0,
    afterEnd: 0,
    roundsIgnored: 0,
    deliveredFromSpool: 0,
    retries: 0,
    refusedTooMany: 0,
  };
  /** Sinks held now (every epoch). */
  private count = 0;
  /** Frames held out of order, all sessions together, and the most that may be. */
  private pendingFrames = 0;
  private readonly maxPending: number;
  /** The sink delivering each origin now. */
  private readonly origins = new Map<string, Sink>();
  private readonly now: () => number;
  private readonly audit: AuditLog | undefined;

  constructor(
    private readonly config: RecvConfig['tcp'] & { linkDownAbortMs: number },
    private readonly options: TcpSourceOptions = {},
  ) {
    this.now = options.now ?? (() => performance.now());
    this.audit = options.audit;
    this.allow = config.allow ? new Set(config.allow.map((d) => `${d.host}:${d.port}`)) : undefined;
    this.maxPending = Math.max(4 * config.maxReorderFrames, MAX_PENDING_FRAMES);
  }

  /** Delivers again what the spool held complete when the receiver last stopped. */
  resumeSpool(): void {
    for (const held of this.options.spool?.spool.recover() ?? []) {
      const round = roundOf(held.open);
      if (round && this.options.delivered?.has(round.origin)) {
        held.remove(); // delivered, then killed before the spool let go of it
        continue;
      }
      const sink = this.newSink(held.epoch, held.session);
      // Whole, and nothing of it is taken from the link any more.
      Object.assign(sink, { held, whole: true, fromSpool: true, next: Number.MAX_SAFE_INTEGER });
      if (round) {
        sink.round = round;
        this.origins.set(round.origin, sink);
      }
      log.info(
        { session: held.session, epoch: held.epoch, bytes: held.bytes, origin: round?.origin ?? null },
        'session held in the spool: delivering it again',
      );
      this.start(sink, held.open);
    }
  }

  onFrame(epoch: number, frame: Frame): void {
    const sink = this.sinkFor(epoch, frame.session);
    if (!sink) return;
    if (frame.seq < sink.next || sink.pending.has(frame.seq)) {
      this.counters.lateDuplicates++;
      return;
    }
    // Out of order: within the session's reorder window, and within what all sessions may
    // hold together (each frame holds its datagram).
    if (frame.seq - sink.next >= this.config.maxReorderFrames || this.pendingFrames >= this.maxPending) {
      this.counters.outOfWindow++;
      return;
    }
    sink.knownLast = Math.max(sink.knownLast, frame.seq);
    sink.pending.set(frame.seq, frame);
    this.pendingFrames++;
    this.deliver(sink);
  }

  onHeartbeat(epoch: number, heartbeat: Heartbeat): void {
    const listed = new Set<number>();
    for (const mark of heartbeat.sessions) {
      listed.add(mark.session);
      const sink = this.sinkFor(epoch, mark.session, false);
      if (!sink) continue;
      sink.knownLast = Math.max(sink.knownLast, mark.lastSeq);
    }
    if (heartbeat.truncated) return;
    for (const sink of this.sinks.get(epoch)?.values() ?? []) {
      if (!listed.has(sink.id) && !sink.whole) this.abort(sink, 'sender-forgot');
    }
  }

  /** Aborts what can no longer complete: unrepaired gaps, and sessions of a silent or replaced sender. */
  tick(silentMs: (epoch: number) => number | undefined): void {
    const now = this.now();
    for (const [epoch, sinks] of this.sinks) {
      const silent = silentMs(epoch);
      for (const sink of sinks.values()) {
        if (sink.whole) continue; // the link has nothing more to give it
        if (silent === undefined) this.abort(sink, 'sender-gone');
        else if (silent > this.config.linkDownAbortMs) this.abort(sink, 'link-down');
        else this.checkGap(sink, now);
      }
    }
    for (const [epoch, ended] of this.ended) {
      for (const [id, until] of ended) if (until < now) ended.delete(id);
      if (ended.size === 0 && !this.sinks.has(epoch)) this.ended.delete(epoch);
    }
  }

  /**
   * Resets every session not yet complete (on shutdown): the destinations must not see a clean
   * end. Sessions held complete in the spool stay there, to be delivered after the restart.
   */
  shutdown(): void {
    for (const sinks of this.sinks.values())
      for (const sink of sinks.values()) {
        if (sink.held?.complete) {
          sink.socket?.resetAndDestroy();
          sink.held.release();
          sink.held = undefined;
          this.forget(sink);
        } else this.abort(sink, 'shutdown');
      }
  }

  /** Sessions held in the spool now. */
  get held(): number {
    let n = 0;
    for (const sinks of this.sinks.values()) for (const sink of sinks.values()) if (sink.held) n++;
    return n;
  }

  /** Sessions in progress, for the stats. */
  active(): {
    epoch: number;
    session: number;
    state: SinkState;
    destination?: string;
    origin?: string;
    held?: number;
    heldComplete?: boolean;
    delivered: number;
  }[] {
    return [...this.sinks.values()].flatMap((m) =>
      [...m.values()].map((s) => ({
        epoch: s.epoch,
        session: s.id,
        state: s.state,
        ...(s.destination ? { destination: s.destination } : {}),
        ...(s.round ? { origin: s.round.origin } : {}),
        ...(s.held ? { held: s.held.bytes, heldComplete: s.held.complete !== undefined } : {}),
        delivered: s.delivered,
      })),
    );
  }

  private checkGap(sink: Sink, now: number): void {
    const missing = sink.pending.size > 0 || sink.knownLast >= sink.next;
    if (!missing || sink.state === 'ending') {
      sink.gap = undefined;
      return;
    }
    if (!sink.gap || sink.gap.seq !== sink.next) sink.gap = { seq: sink.next, since: now };
    else if (now - sink.gap.since > this.config.gapTimeoutMs) this.abort(sink, 'gap');
  }

  private sinkFor(epoch: number, id: number, countEnded = true): Sink | undefined {
    const existing = this.sinks.get(epoch)?.get(id);
    if (existing) return existing;
    if (this.ended.get(epoch)?.has(id)) {
      if (countEnded) this.counters.afterEnd++;
      return undefined;
    }
    if (this.count >= this.config.maxSessions) {
      // Not remembered either: a flood of session ids must not grow any table.
      this.counters.refusedTooMany++;
      return undefined;
    }
    this.counters.sessions++;
    return this.newSink(epoch, id);
  }

  private newSink(epoch: number, id: number): Sink {
    let sinks = this.sinks.get(epoch);
    if (!sinks) {
      sinks = new Map();
      this.sinks.set(epoch, sinks);
    }
    const sink: Sink = {
      epoch,
      id,
      state: 'waiting',
      next: 0,
      pending: new Map(),
      knownLast: -1,
      whole: false,
      fromSpool: false,
      draining: false,
      delivered: 0,
      opened: this.now(),
    };
    sinks.set(id, sink);
    this.count++;
    return sink;
  }

  private deliver(sink: Sink): void {
    for (;;) {
      const frame = sink.pending.get(sink.next);
      if (!frame) return;
      sink.pending.delete(sink.next);
      this.pendingFrames--;
      sink.next++;
      if (!this.process(sink, frame)) return;
    }
  }

  /** Acts on the next in-order frame; false when the session ended. */
  private process(sink: Sink, frame: Frame): boolean {
    if (frame.seq === 0) return this.open(sink, frame);
    switch (frame.type) {
      case FrameType.Data:
        return sink.held
          ? this.hold(sink, () => sink.held!.append(frame.payload))
          : this.write(sink, frame.payload);
      case FrameType.Close:
        sink.whole = true;
        if (!sink.held) this.end(sink);
        else if (this.hold(sink, () => sink.held!.markComplete())) this.pump(sink);
        return false;
      case FrameType.Abort:
        this.abort(sink, 'client-aborted');
        return false;
      default:
        this.abort(sink, 'bad-open');
        return false;
    }
  }

  /** Without the spool: straight to the destination's socket, aborting if it falls too far behind. */
  private write(sink: Sink, payload: Buffer): boolean {
    const socket = sink.socket!;
    socket.write(payload);
    sink.hash?.update(payload);
    sink.delivered += payload.length;
    this.counters.deliveredBytes += payload.length;
    if (socket.writableLength > this.config.maxBufferBytes) {
      this.abort(sink, 'destination-slow');
      return false;
    }
    return true;
  }

  /** A write to the spool; on failure (a full disk) the session is aborted. Then delivery goes on. */
  private hold(sink: Sink, write: () => void): boolean {
    try {
      write();
    } catch (err) {
      log.error({ session: sink.id, err }, 'receiver TCP spool write failed');
      this.abort(sink, err instanceof SpoolFullError ? 'disk-full' : 'spool-failed');
      return false;
    }
    this.pump(sink);
    return true;
  }

  private open(sink: Sink, frame: Frame): boolean {
    const open = frame.type === FrameType.Open ? decodeOpen(frame.payload) : undefined;
    if (!open) {
      this.abort(sink, 'bad-open');
      return false;
    }
    const round = roundOf(open);
    if (round) {
      const current = this.origins.get(round.origin);
      if (this.options.delivered?.has(round.origin) || current?.whole) {
        // Delivered, or arrived whole and being delivered: this round is not needed.
        this.counters.roundsIgnored++;
        log.debug({ session: sink.id, epoch: sink.epoch, ...round }, 'round of a delivered session ignored');
        this.forget(sink);
        return false;
      }
      // Sent after every frame of the older round: what that one still lacks is lost.
      if (current) this.abort(current, 'superseded');
      sink.round = round;
      this.origins.set(round.origin, sink);
    }
    const spool = this.options.spool?.spool;
    if (spool) {
      try {
        sink.held = spool.create(sink.epoch, sink.id, open);
      } catch (err) {
        log.error({ session: sink.id, err }, 'receiver TCP spool refused a session');
        this.abort(sink, err instanceof SpoolFullError ? 'disk-full' : 'spool-failed');
        return false;
      }
    } else sink.hash = createHash('sha256');
    return this.start(sink, open);
  }

  /** Checks the destination and connects to it. */
  private start(sink: Sink, open: OpenPayload): boolean {
    const { host, port } = open.destination;
    sink.open = open;
    sink.destination = `${host}:${port}`;
    if (this.allow && !this.allow.has(sink.destination)) {
      this.abort(sink, 'not-allowed');
      return false;
    }
    log.info(
      {
        session: sink.id,
        epoch: sink.epoch,
        destination: sink.destination,
        client: open.client,
        ...sink.round,
      },
      'session open',
    );
    this.connect(sink);
    return true;
  }

  private connect(sink: Sink): void {
    const { host, port } = sink.open!.destination;
    sink.state = 'connecting';
    const socket = connect({ host, port });
    sink.socket = socket;
    const timer = setTimeout(() => this.destinationFailed(sink, socket), this.config.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      setAbortiveClose(socket, true);
      if (sink.state === 'connecting') sink.state = 'open';
      this.pump(sink);
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      log.warn({ session: sink.id, destination: sink.destination, err }, 'destination failed');
      this.destinationFailed(sink, socket);
    });
    socket.on('data', () => undefined); // the diode carries nothing back; replies are read and dropped
  }

  /** Held in the spool: try again later from the start, on a new connection. Otherwise: abort. */
  private destinationFailed(sink: Sink, socket: Socket): void {
    if (sink.socket !== socket) return;
    const retryMs = this.options.spool?.retryMs;
    if (!sink.held || retryMs === undefined) {
      this.abort(sink, 'destination-failed');
      return;
    }
    if (!socket.destroyed) socket.resetAndDestroy();
    sink.socket = undefined;
    sink.state = 'retrying';
    sink.delivered = 0;
    sink.draining = false;
    this.counters.retries++;
    setTimeout(() => {
      if (sink.state === 'retrying' && this.sinks.get(sink.epoch)?.get(sink.id) === sink) this.connect(sink);
    }, retryMs).unref();
  }

  /** From the spool to the destination, as fast as it takes it; the clean end once all is there. */
  private pump(sink: Sink): void {
    const held = sink.held;
    const socket = sink.socket;
    if (!held || !socket || sink.state !== 'open' || sink.draining) return;
    while (sink.delivered < held.bytes) {
      const chunk = held.read(sink.delivered, SPOOL_READ_BYTES);
      sink.delivered += chunk.length;
      this.counters.deliveredBytes += chunk.length;
      if (!socket.write(chunk)) {
        sink.draining = true;
        socket.once('drain', () => {
          sink.draining = false;
          this.pump(sink);
        });
        return;
      }
    }
    if (held.complete) this.end(sink);
  }

  private end(sink: Sink): void {
    sink.state = 'ending';
    const socket = sink.socket!;
    const finish = () => {
      setAbortiveClose(socket, false);
      socket.end(() => {
        this.counters.completed++;
        if (sink.fromSpool) this.counters.deliveredFromSpool++;
        if (sink.round) this.options.delivered?.add(sink.round.origin);
        const sha256 = sink.held?.complete?.sha256 ?? sink.hash?.digest('hex');
        log.info(
          { session: sink.id, destination: sink.destination, bytes: sink.delivered, ...sink.round },
          'session delivered',
        );
        this.audit?.write('session-delivered', {
          epoch: sink.epoch,
          session: sink.id,
          destination: sink.destination,
          bytes: sink.delivered,
          sha256,
          ...sink.round,
          ...(sink.fromSpool ? { fromSpool: true } : {}),
        });
        sink.held?.remove();
        sink.held = undefined;
        this.forget(sink);
      });
    };
    if (socket.connecting) socket.once('connect', finish);
    else finish();
  }

  private abort(sink: Sink, reason: AbortReason): void {
    if (!this.sinks.get(sink.epoch)?.has(sink.id)) return;
    this.counters.aborted++;
    this.counters.abortReasons[reason] = (this.counters.abortReasons[reason] ?? 0) + 1;
    log.warn(
      {
        session: sink.id,
        epoch: sink.epoch,
        reason,
        destination: sink.destination ?? null,
        delivered: sink.delivered,
        missing: sink.next,
      },
      'session aborted: the destination gets a reset, not a stream with a hole',
    );
    this.audit?.write('session-aborted', {
      epoch: sink.epoch,
      session: sink.id,
      reason,
      destination: sink.destination ?? null,
      delivered: sink.delivered,
      ...sink.round,
    });
    const socket = sink.socket;
    if (socket && !socket.destroyed) {
      if (socket.connecting) socket.destroy();
      else socket.resetAndDestroy();
    }
    sink.held?.remove();
    sink.held = undefined;
    this.forget(sink);
  }

  private forget(sink: Sink): void {
    if (sink.round && this.origins.get(sink.round.origin) === sink) this.origins.delete(sink.round.origin);
    const sinks = this.sinks.get(sink.epoch);
    if (sinks?.delete(sink.id)) this.count--;
    if (sinks?.size === 0) this.sinks.delete(sink.epoch);
    let ended = this.ended.get(sink.epoch);
    if (!ended) {
      ended = new Map();
      this.ended.set(sink.epoch, ended);
    }
    ended.set(sink.id, this.now() + TOMBSTONE_MS);
    // Bounded: the oldest tombstone goes first (a flood of short sessions must not grow it).
    if (ended.size > MAX_TOMBSTONES) ended.delete(ended.keys().next().value!);
    this.pendingFrames -= sink.pending.size;
    sink.pending.clear();
  }
}
