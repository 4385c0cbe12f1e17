/**
 * STAMP session-reflector, stateful (RFC 8762 §4.3): each session (the sender's address and
 * port) has its own sequence counter, so the sender can tell loss on the way out from loss
 * on the way back. Sessions idle for a minute are forgotten, and their number is capped, so
 * no sender can grow the reflector's memory. A malformed packet is counted and dropped.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import { receivedAtNs } from '../../../shared/socket-options.js';
import { wallNs } from './clock.js';
import { decodeSender, ERROR_ESTIMATE_SYNCED, encodeReflector, StampPacketError } from './packet.js';
import { sendTimed, timingSocket } from './socket.js';

const IDLE_MS = 60_000;
const MAX_SESSIONS = 1024;

export interface ReflectorCounters {
  reflected: number;
  malformed: number;
  /** Packets from a new sender refused because MAX_SESSIONS were active. */
  refusedSessions: number;
}

export class StampReflector {
  readonly counters: ReflectorCounters = { reflected: 0, malformed: 0, refusedSessions: 0 };
  private readonly sessions = new Map<string, { next: number; lastMs: number }>();
  private readonly socket: Socket;
  private readonly sweep: NodeJS.Timeout;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (msg, from) => this.reflect(msg, from));
    this.sweep = setInterval(() => this.forgetIdle(), IDLE_MS / 4);
    this.sweep.unref();
  }

  /** Listens on `address:port` (0 picks a free port; see `port`). */
  static async listen(port: number, address = '0.0.0.0'): Promise<StampReflector> {
    return new StampReflector(await timingSocket(port, address));
  }

  get port(): number {
    return this.socket.address().port;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  private reflect(msg: Buffer, from: RemoteInfo): void {
    const rxNs = receivedAtNs(this.socket) ?? wallNs();
    if (from.port === 0) {
      this.counters.malformed++; // only a raw socket sends from port 0; there is no answering it
      return;
    }
    let probe: ReturnType<typeof decodeSender>;
    try {
      probe = decodeSender(msg);
    } catch (err) {
      if (!(err instanceof StampPacketError)) throw err;
      this.counters.malformed++;
      return;
    }
    const key = `${from.address}:${from.port}`;
    let session = this.sessions.get(key);
    if (!session) {
      if (this.sessions.size >= MAX_SESSIONS) {
        this.counters.refusedSessions++;
        return;
      }
      session = { next: 0, lastMs: 0 };
      this.sessions.set(key, session);
    }
    session.lastMs = Date.now();
    const reply = encodeReflector({
      seq: session.next++,
      txNs: 0n, // written as it leaves
      errorEstimate: ERROR_ESTIMATE_SYNCED,
      rxNs,
      senderSeq: probe.seq,
      senderTxNs: probe.txNs,
      senderErrorEstimate: probe.errorEstimate,
      senderTtl: 0, // Node cannot read a datagram's TTL (no IP_RECVTTL)
    });
    if ('txNs' in sendTimed(this.socket, from.address, from.port, reply, false)) this.counters.reflected++;
  }

  private forgetIdle(): void {
    const before = Date.now() - IDLE_MS;
    for (const [key, s] of this.sessions) if (s.lastMs < before) this.sessions.delete(key);
  }

  close(): Promise<void> {
    clearInterval(this.sweep);
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
