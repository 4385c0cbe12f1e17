/**
 * Heartbeats: once a second the sender says it is alive, how many datagrams it has sent,
 * and which sessions it has (open, or closed with their final sequence). With no return
 * path this is all the receiver can learn about the link: whether it is up, how much the
 * link loses, and whether the tail of a session was lost (its close never came).
 *
 * Payload (big-endian): u32 interval ms, u32 uptime s, f64 datagrams sent, u8 truncated,
 * u16 count, then per session u32 id, u32 last sequence, u8 state (0 open, 1 closed); then
 * u8 n and n f64 sender counters in the order of SENDER_COUNTERS (older senders: none), so
 * the receiving side sees what the sender did — copies, repairs, files — with no return path.
 * New counters are appended: a receiver reads those it knows, and 0 for those a sender lacks.
 */

export const SENDER_COUNTERS = [
  'frames',
  'copiesSent',
  'repairFrames',
  'fecBlocks',
  'tcpSessions',
  'filesSent',
  'fileBytes',
  /** The sender's configured link rate, Mbit/s: the receiver sizes its buffer by it. */
  'rateMbit',
] as const;
export type SenderCounters = Record<(typeof SENDER_COUNTERS)[number], number>;

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
  counters?: SenderCounters;
}

const FIXED = 4 + 4 + 8 + 1 + 2;
const ENTRY = 9;

const COUNTERS_BYTES = 1 + SENDER_COUNTERS.length * 8;

export function encodeHeartbeat(h: Omit<Heartbeat, 'truncated'>, maxBytes: number): Buffer {
  const extra = h.counters ? COUNTERS_BYTES : 0;
  const fits = Math.max(0, Math.floor((maxBytes - FIXED - extra) / ENTRY));
  const sessions = h.sessions.slice(0, fits);
  const b = Buffer.alloc(FIXED + sessions.length * ENTRY + extra);
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
  if (h.counters) {
    const o = FIXED + sessions.length * ENTRY;
    b[o] = SENDER_COUNTERS.length;
    SENDER_COUNTERS.forEach((name, i) => {
      b.writeDoubleBE(h.counters![name], o + 1 + i * 8);
    });
  }
  return b;
}

export function decodeHeartbeat(b: Buffer): Heartbeat | undefined {
  if (b.length < FIXED) return undefined;
  const count = b.readUInt16BE(17);
  const end = FIXED + count * ENTRY;
  const n = b.length > end ? b[end]! : 0;
  if (b.length !== end && b.length !== end + 1 + n * 8) return undefined;
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
    ...(b.length > end ? { counters: decodeCounters(b, end + 1, n) } : {}),
  };
}

function decodeCounters(b: Buffer, at: number, n: number): SenderCounters {
  const c = Object.fromEntries(SENDER_COUNTERS.map((k) => [k, 0])) as SenderCounters;
  SENDER_COUNTERS.forEach((name, i) => {
    if (i < n) c[name] = b.readDoubleBE(at + i * 8);
  });
  return c;
}
