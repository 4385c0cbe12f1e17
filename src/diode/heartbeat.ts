/**
 * Heartbeats: once a second the sender says it is alive, how many datagrams it has sent,
 * and which sessions it has (open, or closed with their final sequence). With no return
 * path this is all the receiver can learn about the link: whether it is up, how much the
 * link loses, and whether the tail of a session was lost (its close never came).
 *
 * Payload (big-endian): u32 interval ms, u32 uptime s, f64 datagrams sent, u8 truncated,
 * u16 count, then per session u32 id, u32 last sequence, u8 state (0 open, 1 closed).
 */

export interface SessionMark {
  session: number;
  /** Highest sequence sent so far (for a closed session: its close frame's). */
  lastSeq: number;
  closed: boolean;
}

export interface Heartbeat {
  intervalMs: number;
  uptimeS: number;
  datagramsSent: number;
  /** True when not every session fitted: the receiver must not read absence as "forgotten". */
  truncated: boolean;
  sessions: SessionMark[];
}

const FIXED = 4 + 4 + 8 + 1 + 2;
const ENTRY = 9;

export function encodeHeartbeat(h: Omit<Heartbeat, 'truncated'>, maxBytes: number): Buffer {
  const fits = Math.max(0, Math.floor((maxBytes - FIXED) / ENTRY));
  const sessions = h.sessions.slice(0, fits);
  const b = Buffer.alloc(FIXED + sessions.length * ENTRY);
  b.writeUInt32BE(h.intervalMs, 0);
  b.writeUInt32BE(h.uptimeS, 4);
  b.writeDoubleBE(h.datagramsSent, 8);
  b[16] = sessions.length < h.sessions.length ? 1 : 0;
  b.writeUInt16BE(sessions.length, 17);
  sessions.forEach((s, i) => {
    const o = FIXED + i * ENTRY;
    b.writeUInt32BE(s.session, o);
    b.writeUInt32BE(s.lastSeq, o + 4);
    b[o + 8] = s.closed ? 1 : 0;
  });
  return b;
}

export function decodeHeartbeat(b: Buffer): Heartbeat | undefined {
  if (b.length < FIXED) return undefined;
  const count = b.readUInt16BE(17);
  if (b.length !== FIXED + count * ENTRY) return undefined;
  const sessions: SessionMark[] = [];
  for (let i = 0; i < count; i++) {
    const o = FIXED + i * ENTRY;
    sessions.push({ session: b.readUInt32BE(o), lastSeq: b.readUInt32BE(o + 4), closed: b[o + 8] === 1 });
  }
  return {
    intervalMs: b.readUInt32BE(0),
    uptimeS: b.readUInt32BE(4),
    datagramsSent: b.readDoubleBE(8),
    truncated: b[16] === 1,
    sessions,
  };
}

export interface LinkHealth {
  alive: boolean;
  heartbeats: number;
  lastHeartbeatAgoMs: number | null;
  /** Fraction of datagrams (originals and copies) the link lost, from the sender's count. */
  datagramLoss: number | null;
  senderUptimeS: number | null;
}

/** The receiver's view of the link: alive while heartbeats keep coming; loss from their counts. */
export class LinkMonitor {
  private last: { at: number; heartbeat: Heartbeat; received: number } | undefined;
  private first: { heartbeat: Heartbeat; received: number } | undefined;
  private count = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** `received`: datagrams of this sender the collector has counted so far, this one included. */
  heard(heartbeat: Heartbeat, received: number): void {
    this.count++;
    const entry = { at: this.now(), heartbeat, received };
    if (!this.first || heartbeat.datagramsSent < (this.last?.heartbeat.datagramsSent ?? 0))
      this.first = entry;
    this.last = entry;
  }

  alive(): boolean {
    return this.last !== undefined && this.now() - this.last.at < this.timeoutMs;
  }

  /** Ms since the last heartbeat, or undefined if none was ever heard. */
  silenceMs(): number | undefined {
    return this.last ? this.now() - this.last.at : undefined;
  }

  health(): LinkHealth {
    const { first, last } = this;
    const sent = first && last ? last.heartbeat.datagramsSent - first.heartbeat.datagramsSent : 0;
    const got = first && last ? last.received - first.received : 0;
    return {
      alive: this.alive(),
      heartbeats: this.count,
      lastHeartbeatAgoMs: last ? this.now() - last.at : null,
      datagramLoss: sent > 0 ? Math.max(0, 1 - got / sent) : null,
      senderUptimeS: last?.heartbeat.uptimeS ?? null,
    };
  }
}
