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
 */
import { connect, type Socket } from 'node:net';
import { log } from '../shared/log.js';
import type { AuditLog } from './audit.js';
import type { RecvConfig } from './config.js';
import { decodeOpen, type Frame, FrameType } from './frame.js';
import type { Heartbeat } from './heartbeat.js';
import { setAbortiveClose } from './socket-options.js';

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
  | 'shutdown';

type SinkState = 'waiting' | 'connecting' | 'open' | 'ending';

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
  /** Frames of sessions that have already ended. */
  afterEnd: number;
}

const TOMBSTONE_MS = 60_000;

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
  };

  constructor(
    private readonly config: RecvConfig['tcp'] & { linkDownAbortMs: number },
    private readonly now: () => number = () => performance.now(),
    private readonly audit?: AuditLog,
  ) {
    this.allow = config.allow ? new Set(config.allow.map((d) => `${d.host}:${d.port}`)) : undefined;
  }

  onFrame(epoch: number, frame: Frame): void {
    const sink = this.sinkFor(epoch, frame.session);
    if (!sink) {
      this.counters.afterEnd++;
      return;
    }
    if (frame.seq < sink.next || sink.pending.has(frame.seq)) {
      this.counters.lateDuplicates++;
      return;
    }
    if (frame.seq - sink.next >= this.config.maxReorderFrames) {
      this.counters.outOfWindow++;
      return;
    }
    sink.knownLast = Math.max(sink.knownLast, frame.seq);
    sink.pending.set(frame.seq, frame);
    this.deliver(sink);
  }

  onHeartbeat(epoch: number, heartbeat: Heartbeat): void {
    const listed = new Set<number>();
    for (const mark of heartbeat.sessions) {
      listed.add(mark.session);
      const sink = this.sinkFor(epoch, mark.session);
      if (!sink) continue;
      sink.knownLast = Math.max(sink.knownLast, mark.lastSeq);
    }
    if (heartbeat.truncated) return;
    for (const sink of this.sinks.get(epoch)?.values() ?? []) {
      if (!listed.has(sink.id)) this.abort(sink, 'sender-forgot');
    }
  }

  /** Aborts what can no longer complete: unrepaired gaps, and sessions of a silent or replaced sender. */
  tick(silentMs: (epoch: number) => number | undefined): void {
    const now = this.now();
    for (const [epoch, sinks] of this.sinks) {
      const silent = silentMs(epoch);
      for (const sink of sinks.values()) {
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

  /** Resets every session not yet complete (on shutdown): the destinations must not see a clean end. */
  shutdown(): void {
    for (const sinks of this.sinks.values()) for (const sink of sinks.values()) this.abort(sink, 'shutdown');
  }

  /** Sessions in progress, for the stats. */
  active(): { epoch: number; session: number; state: SinkState; destination?: string; delivered: number }[] {
    return [...this.sinks.values()].flatMap((m) =>
      [...m.values()].map((s) => ({
        epoch: s.epoch,
        session: s.id,
        state: s.state,
        ...(s.destination ? { destination: s.destination } : {}),
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

  private sinkFor(epoch: number, id: number): Sink | undefined {
    let sinks = this.sinks.get(epoch);
    const existing = sinks?.get(id);
    if (existing) return existing;
    if (this.ended.get(epoch)?.has(id)) return undefined;
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
      delivered: 0,
      opened: this.now(),
    };
    sinks.set(id, sink);
    this.counters.sessions++;
    return sink;
  }

  private deliver(sink: Sink): void {
    for (;;) {
      const frame = sink.pending.get(sink.next);
      if (!frame) return;
      sink.pending.delete(sink.next);
      sink.next++;
      if (!this.process(sink, frame)) return;
    }
  }

  /** Acts on the next in-order frame; false when the session ended. */
  private process(sink: Sink, frame: Frame): boolean {
    if (frame.seq === 0) return this.open(sink, frame);
    switch (frame.type) {
      case FrameType.Data: {
        const socket = sink.socket!;
        socket.write(frame.payload);
        sink.delivered += frame.payload.length;
        this.counters.deliveredBytes += frame.payload.length;
        if (socket.writableLength > this.config.maxBufferBytes) {
          this.abort(sink, 'destination-slow');
          return false;
        }
        return true;
      }
      case FrameType.Close:
        this.end(sink);
        return false;
      case FrameType.Abort:
        this.abort(sink, 'client-aborted');
        return false;
      default:
        this.abort(sink, 'bad-open');
        return false;
    }
  }

  private open(sink: Sink, frame: Frame): boolean {
    const open = frame.type === FrameType.Open ? decodeOpen(frame.payload) : undefined;
    if (!open) {
      this.abort(sink, 'bad-open');
      return false;
    }
    const { host, port } = open.destination;
    sink.destination = `${host}:${port}`;
    if (this.allow && !this.allow.has(sink.destination)) {
      this.abort(sink, 'not-allowed');
      return false;
    }
    sink.state = 'connecting';
    const socket = connect({ host, port });
    sink.socket = socket;
    const timer = setTimeout(() => this.abort(sink, 'destination-failed'), this.config.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      setAbortiveClose(socket, true);
      if (sink.state === 'connecting') sink.state = 'open';
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      log.warn({ session: sink.id, destination: sink.destination, err: err.message }, 'destination failed');
      this.abort(sink, 'destination-failed');
    });
    socket.on('data', () => undefined); // the diode carries nothing back; replies are read and dropped
    log.info(
      { session: sink.id, epoch: sink.epoch, destination: sink.destination, client: open.client },
      'session open',
    );
    return true;
  }

  private end(sink: Sink): void {
    sink.state = 'ending';
    const socket = sink.socket!;
    const finish = () => {
      setAbortiveClose(socket, false);
      socket.end(() => {
        this.counters.completed++;
        log.info(
          { session: sink.id, destination: sink.destination, bytes: sink.delivered },
          'session delivered',
        );
        this.audit?.write('session-delivered', {
          epoch: sink.epoch,
          session: sink.id,
          destination: sink.destination,
          bytes: sink.delivered,
        });
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
    });
    const socket = sink.socket;
    if (socket && !socket.destroyed) {
      if (socket.connecting) socket.destroy();
      else socket.resetAndDestroy();
    }
    this.forget(sink);
  }

  private forget(sink: Sink): void {
    const sinks = this.sinks.get(sink.epoch);
    sinks?.delete(sink.id);
    if (sinks?.size === 0) this.sinks.delete(sink.epoch);
    let ended = this.ended.get(sink.epoch);
    if (!ended) {
      ended = new Map();
      this.ended.set(sink.epoch, ended);
    }
    ended.set(sink.id, this.now() + TOMBSTONE_MS);
    sink.pending.clear();
  }
}
