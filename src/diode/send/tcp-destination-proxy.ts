/**
 * The sender's TCP destination proxy: per configured service it listens and accepts TCP
 * connections as if it were the destination. Each connection is a session; what the client
 * sends is stored, cut into data frames and handed to the aggregator. Reads pause when the
 * aggregator's buffer is full or the session's Th2 says so, and TCP's window does the rest.
 *
 * With the store, a session is accepted once the client has closed its side cleanly and the
 * spool holds it fsynced (session-store.ts); only then do the close frame and the client's FIN
 * go out. Until then the client socket has SO_LINGER 0, so a client whose session was not
 * accepted — the sender died, the disk is full — sees a reset, never a clean end. Accepted
 * sessions go on to session-rounds.ts: the carousel, and the replay after a restart.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { diodeLog as log } from '../../shared/log.js';
import { setAbortiveClose, tcpInfo } from '../../shared/socket-options.js';
import { started } from '../../shared/started.js';
import type { AuditLog } from '../audit.js';
import { SpoolFullError } from '../disk.js';
import { encodeOpen, FrameType, type Importance } from '../protocol/frame.js';
import type { SessionMark } from '../protocol/heartbeat.js';
import { encodeRoundOpen, originId } from '../protocol/session-origin.js';
import type { Aggregator } from './aggregator.js';
import type { AcceptedSession, SessionStore, SessionWriter } from './session-store.js';
import { extraDelayMs, ReadThrottle, type SessionKey, type ThroughputRule, th2For } from './throttle.js';

export interface TcpService {
  name: string;
  listen: { host: string; port: number };
  destination: { host: string; port: number };
  importance: Importance;
}

export interface TcpSessionStats extends SessionKey {
  session: number;
  bytes: number;
  frames: number;
  /** closed: the client ended cleanly and the session was accepted (stored, when the store is on). */
  state: 'open' | 'closed' | 'aborted' | 'refused';
  th2: number | null;
  /** Read rate over the session's life, bit/s. */
  rate: number;
  rttMs: number | null;
  windowBytes: number | null;
  /** Eq. (2): the extra RTT that would hold this session at Th2 by delay instead of by reads. */
  extraDelayMs: number | null;
}

interface Session {
  id: number;
  key: SessionKey;
  socket: Socket;
  service: TcpService;
  nextSeq: number;
  bytes: number;
  frames: number;
  started: number;
  ended?: number;
  state: TcpSessionStats['state'];
  throttle?: ReadThrottle;
  store?: SessionWriter;
  /** Why reads are paused: a throttle timer, a full buffer, or both. */
  holds: Set<'throttle' | 'buffer'>;
}

/** Closed sessions stay in heartbeats this long, so a lost close frame is noticed. */
const CLOSED_KEPT_MS = 10_000;

export class TcpDestinationProxy {
  private readonly servers: Server[] = [];
  private readonly sessions = new Map<number, Session>();
  private readonly closed: Session[] = [];
  private readonly unsubscribe: () => void;
  /** opened: connections taken; accepted: ended cleanly and stored; refused: the store failed (disk full). */
  counters = { opened: 0, accepted: 0, aborted: 0, refused: 0, bytes: 0 };

  constructor(
    private readonly aggregator: Aggregator,
    private readonly options: {
      epoch: number;
      services: TcpService[];
      throughput: ThroughputRule[];
      store?: SessionStore;
      /** A session accepted into the store, its live round queued on the aggregator. */
      onAccepted?: (session: AcceptedSession) => void;
      audit?: AuditLog;
      newSessionId: () => number;
    },
  ) {
    this.unsubscribe = aggregator.onDrain(() => {
      for (const s of this.sessions.values()) this.release(s, 'buffer');
    });
  }

  async listen(): Promise<void> {
    for (const service of this.options.services) {
      // Half-open: the client's end is acknowledged by our FIN only once the session is stored.
      const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) =>
        this.accept(service, socket),
      );
      await started(server, (done) => server.listen(service.listen.port, service.listen.host, done));
      this.servers.push(server);
      log.info({ service: service.name, listen: service.listen, to: service.destination }, 'tcp service');
    }
  }

  private accept(service: TcpService, socket: Socket): void {
    const id = this.options.newSessionId();
    const key: SessionKey = {
      service: service.name,
      srcIp: stripV4Mapped(socket.remoteAddress ?? ''),
      srcPort: socket.remotePort ?? 0,
      dstIp: service.destination.host,
      dstPort: service.destination.port,
    };
    const th2 = th2For(this.options.throughput, key);
    const open = {
      service: service.name,
      destination: service.destination,
      client: { address: key.srcIp, port: key.srcPort },
    };
    const s: Session = {
      id,
      key,
      socket,
      service,
      nextSeq: 0,
      bytes: 0,
      frames: 0,
      started: performance.now(),
      state: 'open',
      holds: new Set(),
      ...(th2 ? { throttle: new ReadThrottle(th2) } : {}),
    };
    this.sessions.set(id, s);
    this.counters.opened++;
    log.info({ session: id, ...key, th2: th2 ?? null }, 'session open');
    this.options.audit?.write('session-open', { epoch: this.options.epoch, session: id, ...key });
    const origin = originId(this.options.epoch, id);
    if (this.options.store) {
      setAbortiveClose(socket, true);
      try {
        s.store = this.options.store.open(origin, open, Date.now());
      } catch (err) {
        this.emit(s, FrameType.Open, encodeOpen(open));
        this.refuse(s, err);
        return;
      }
    }
    this.emit(
      s,
      FrameType.Open,
      this.options.store ? encodeRoundOpen(open, { origin, round: 0 }) : encodeOpen(open),
    );
    socket.on('data', (chunk: Buffer) => this.data(s, chunk));
    socket.on('end', () => this.finish(s, 'closed'));
    socket.on('error', (err) => {
      log.warn({ session: id, err }, 'client connection failed');
      this.finish(s, 'aborted');
    });
    socket.on('close', () => this.finish(s, 'aborted'));
    socket.resume();
  }

  private data(s: Session, chunk: Buffer): void {
    if (s.state !== 'open') return;
    try {
      s.store?.append(chunk);
    } catch (err) {
      this.refuse(s, err);
      return;
    }
    s.bytes += chunk.length;
    this.counters.bytes += chunk.length;
    const max = this.aggregator.maxPayload;
    let room = true;
    for (let off = 0; off < chunk.length; off += max) {
      room = this.emit(s, FrameType.Data, chunk.subarray(off, off + max));
    }
    if (!room) this.hold(s, 'buffer');
    const wait = s.throttle?.take(chunk.length) ?? 0;
    if (wait > 0) {
      this.hold(s, 'throttle');
      setTimeout(() => this.release(s, 'throttle'), wait);
    }
  }

  private emit(s: Session, type: FrameType, payload: Buffer): boolean {
    s.frames++;
    return this.aggregator.submit({
      type,
      importance: s.service.importance,
      session: s.id,
      seq: s.nextSeq++,
      payload,
    });
  }

  private hold(s: Session, why: 'throttle' | 'buffer'): void {
    if (s.holds.size === 0) s.socket.pause();
    s.holds.add(why);
  }

  private release(s: Session, why: 'throttle' | 'buffer'): void {
    if (!s.holds.delete(why)) return;
    if (why === 'buffer' && !this.aggregator.hasRoom()) {
      s.holds.add(why);
      return;
    }
    if (s.holds.size === 0 && s.state === 'open') s.socket.resume();
  }

  /**
   * Ends a session once. A clean end from the client: the session is stored (fsynced), then
   * the close frame and our FIN acknowledge it; a failure to store refuses it instead. Any
   * other end: an abort frame, and what was stored is dropped.
   */
  private finish(s: Session, how: 'closed' | 'aborted'): void {
    if (s.state !== 'open') return;
    let accepted: AcceptedSession | undefined;
    if (how === 'closed' && s.store) {
      try {
        accepted = s.store.accept();
      } catch (err) {
        this.refuse(s, err);
        return;
      }
    }
    this.end(s, how);
    this.emit(s, how === 'closed' ? FrameType.Close : FrameType.Abort, Buffer.alloc(0));
    const stats = this.statsOf(s);
    log.info({ ...stats }, how === 'closed' ? 'session accepted' : 'session aborted by the client');
    this.options.audit?.write(how === 'closed' ? 'session-accepted' : 'session-aborted', {
      epoch: this.options.epoch,
      session: s.id,
      ...s.key,
      bytes: s.bytes,
      ...(accepted ? { origin: accepted.meta.origin, sha256: accepted.meta.sha256 } : {}),
    });
    if (accepted) this.options.onAccepted?.(accepted);
    if (how === 'closed') {
      setAbortiveClose(s.socket, false);
      s.socket.end();
    } else {
      s.store?.discard();
      s.socket.destroy();
    }
  }

  /** The store failed (a full disk): the session is aborted on the link and the client reset. */
  private refuse(s: Session, err: unknown): void {
    this.end(s, 'refused');
    const reason =
      err instanceof SpoolFullError ? err.message : `TCP spool failed: ${(err as Error).message}`;
    this.emit(s, FrameType.Abort, Buffer.alloc(0));
    s.store?.discard();
    log.error(
      { session: s.id, ...s.key, bytes: s.bytes, err: reason },
      'session refused: the client gets a reset',
    );
    this.options.audit?.write('session-refused', {
      epoch: this.options.epoch,
      session: s.id,
      ...s.key,
      bytes: s.bytes,
      error: reason,
    });
    s.socket.resetAndDestroy();
  }

  private end(s: Session, how: 'closed' | 'aborted' | 'refused'): void {
    s.state = how;
    s.ended = performance.now();
    this.counters[how === 'closed' ? 'accepted' : how]++;
    this.sessions.delete(s.id);
    this.closed.push(s);
  }

  /** Open and recently closed sessions with their last sequence, for heartbeats. */
  marks(): SessionMark[] {
    const now = performance.now();
    while (this.closed.length > 0 && now - (this.closed[0]!.ended ?? now) > CLOSED_KEPT_MS)
      this.closed.shift();
    const mark = (s: Session) => ({ session: s.id, lastSeq: s.nextSeq - 1, closed: s.state !== 'open' });
    return [...[...this.sessions.values()].map(mark), ...this.closed.map(mark)];
  }

  stats(): TcpSessionStats[] {
    return [...this.sessions.values(), ...this.closed].map((s) => this.statsOf(s));
  }

  private statsOf(s: Session): TcpSessionStats {
    const info = s.state === 'open' ? tcpInfo(s.socket) : undefined;
    const rttMs = info ? (info.rttUs || info.rcvRttUs) / 1000 : null;
    const windowBytes = info ? info.rcvSpace : null;
    const th2 = s.throttle?.bitsPerSecond ?? null;
    const seconds = ((s.ended ?? performance.now()) - s.started) / 1000;
    return {
      session: s.id,
      ...s.key,
      bytes: s.bytes,
      frames: s.frames,
      state: s.state,
      th2,
      rate: seconds > 0 ? (s.bytes * 8) / seconds : 0,
      rttMs,
      windowBytes,
      extraDelayMs: th2 && rttMs !== null && windowBytes ? extraDelayMs(windowBytes, th2, rttMs) : null,
    };
  }

  async close(): Promise<void> {
    this.unsubscribe();
    for (const s of this.sessions.values()) s.socket.destroy();
    await Promise.all(this.servers.map((srv) => new Promise((r) => srv.close(r))));
  }
}

function stripV4Mapped(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
