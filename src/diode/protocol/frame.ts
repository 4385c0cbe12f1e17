/**
 * The diode's frame: one UDP datagram on the one-way link. A fixed 32-byte header, the
 * payload, then an authentication tag (auth.ts; empty when the link is not authenticated).
 *
 *  offset size field
 *   0     2   magic 0x5244 ('RD')
 *   2     1   version (3)
 *   3     1   type: open, data, close, abort, udp, heartbeat, repair, file manifest/data/end, parity
 *   4     1   flags: bit 0 = authenticated (tag present), bit 1 = FEC (block field in use)
 *   5     1   importance: 0 low (UDP), 1 high (TCP, control)
 *   6     1   copy number: 0 for the original, 1..n for extra copies (nothing else differs)
 *   7     1   tag length in bytes (0 without auth)
 *   8     4   epoch: per sender start; a new epoch resets the receiver's window
 *  12     4   link sequence: one per original frame, shared by its copies (dedup, gap count)
 *  16     4   session id (0 for heartbeats); repair frames: K << 16 | R of their block
 *  20     4   session sequence: 0 = open, 1.. = data in order, last = close; repair: symbol id
 *  24     4   block: with the FEC flag, the link sequence of the block's first frame
 *  28     2   key id of the tag (0 = none)
 *  30     2   payload length
 *  32     n   payload, then the tag
 *
 * Version 2 (issue 10) added the flags, the repair and file types; version 3 the compact FEC
 * symbol (below). Other versions are refused.
 *
 * Multi-byte fields are big-endian. Decoding never throws: a datagram that is not a valid
 * frame yields the reason it was rejected, so the collector can count it.
 */
import { isIP } from 'node:net';

export const FRAME_MAGIC = 0x5244;
export const FRAME_VERSION = 3;
export const HEADER_BYTES = 32;
/** What the link costs per datagram beyond the UDP payload: IPv4 20 + UDP 8 + Ethernet 14. */
export const WIRE_OVERHEAD_BYTES = 42;
/** The largest payload a length field can describe. */
export const MAX_PAYLOAD_BYTES = 0xffff;

export const FrameType = {
  Open: 1,
  Data: 2,
  Close: 3,
  Abort: 4,
  Udp: 5,
  Heartbeat: 6,
  /** A RaptorQ repair symbol of an FEC block (fec.ts). */
  Repair: 7,
  /** A file's manifest (files.ts): session = transfer id, seq = round. */
  FileManifest: 8,
  /** A chunk of a file: session = transfer id, seq = chunk index. */
  FileData: 9,
  /** The end of a round of a file: session = transfer id, seq = round. */
  FileEnd: 10,
  /** An LDPC-staircase repair symbol of an FEC block (ldpc.ts); fields as a repair frame's. */
  Parity: 11,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];
const FRAME_TYPES = new Set<number>(Object.values(FrameType));

export const FrameFlag = { Authenticated: 1, Fec: 2 } as const;
/** Flags this version understands; a frame with any other flag set is rejected. */
const KNOWN_FLAGS = FrameFlag.Authenticated | FrameFlag.Fec;

export const Importance = { Low: 0, High: 1 } as const;
export type Importance = (typeof Importance)[keyof typeof Importance];

export interface FrameHeader {
  type: FrameType;
  flags: number;
  importance: Importance;
  copy: number;
  epoch: number;
  linkSeq: number;
  session: number;
  seq: number;
  block: number;
  keyId: number;
}

export interface Frame extends FrameHeader {
  payload: Buffer;
  tag: Buffer;
}

export type RejectReason =
  | 'short'
  | 'magic'
  | 'version'
  | 'type'
  | 'flags'
  | 'truncated'
  | 'trailing'
  /** A field no sender writes: a copy number above MAX_COPY, a sequence past SEQ_LIMIT, a key id that contradicts the flags. */
  | 'field';

/** The most extra copies of a frame a sender makes (config: copies at most 8). */
export const MAX_COPY = 8;
/**
 * Link and repair sequences stay below this within one epoch: a sender starts a new epoch
 * before either reaches it (aggregator.ts), 2^28 frames before the 32-bit wrap. So within an
 * epoch sequences only grow, and the receiver's window compares them as plain numbers: a
 * frame behind the window is never taken for one ahead of it.
 */
export const SEQ_LIMIT = 2 ** 32 - 2 ** 28;

export type Decoded = { ok: true; frame: Frame } | { ok: false; reason: RejectReason };

/** Writes the header for a payload of `payloadLength` bytes (and `tagLength` bytes of tag). */
export function encodeHeader(h: FrameHeader, payloadLength: number, tagLength = 0): Buffer {
  if (payloadLength > MAX_PAYLOAD_BYTES)
    throw new RangeError(`payload of ${payloadLength} bytes is too long`);
  const b = Buffer.allocUnsafe(HEADER_BYTES);
  b.writeUInt16BE(FRAME_MAGIC, 0);
  b[2] = FRAME_VERSION;
  b[3] = h.type;
  b[4] = h.flags;
  b[5] = h.importance;
  b[6] = h.copy;
  b[7] = tagLength;
  b.writeUInt32BE(h.epoch >>> 0, 8);
  b.writeUInt32BE(h.linkSeq >>> 0, 12);
  b.writeUInt32BE(h.session >>> 0, 16);
  b.writeUInt32BE(h.seq >>> 0, 20);
  b.writeUInt32BE(h.block >>> 0, 24);
  b.writeUInt16BE(h.keyId, 28);
  b.writeUInt16BE(payloadLength, 30);
  return b;
}

/** A copy of a header with another copy number: the only byte in which copies differ. */
export function withCopyNumber(header: Buffer, copy: number): Buffer {
  const b = Buffer.from(header);
  b[6] = copy;
  return b;
}

/** Header and payload in one buffer (tests and tools; the sender sends the two parts as a list). */
export function encodeFrame(h: FrameHeader, payload: Buffer): Buffer {
  return Buffer.concat([encodeHeader(h, payload.length), payload]);
}

/**
 * An FEC source symbol: the part of a frame's header that its block does not already say —
 * type, importance, payload length, session and sequence (12 bytes) — then the payload,
 * zero-padded to the symbol size. Epoch, link sequence (the block's first + the symbol's
 * index), block and flags follow from where the symbol sits, so they are not spent on every
 * symbol; nor is the tag (the symbols a frame is recovered from were checked).
 *
 *  offset size field
 *   0     1   type
 *   1     1   importance
 *   2     2   payload length
 *   4     4   session id
 *   8     4   session sequence
 *  12     n   payload
 */
export const SYMBOL_HEADER_BYTES = 12;

/** Writes a frame (its encoded header and payload) as a source symbol at `offset`; padding is the caller's. */
export function writeSymbol(target: Buffer, offset: number, header: Buffer, payload: Buffer): void {
  target[offset] = header[3]!;
  target[offset + 1] = header[5]!;
  target.writeUInt16BE(payload.length, offset + 2);
  header.copy(target, offset + 4, 16, 24);
  payload.copy(target, offset + SYMBOL_HEADER_BYTES);
}

/** Where a recovered symbol sat: what its frame's header had in common with its block. */
export interface SymbolPlace {
  epoch: number;
  flags: number;
  block: number;
  linkSeq: number;
}

/** The frame a recovered source symbol carries, or undefined when it cannot be one. */
export function decodeSymbol(symbol: Buffer, place: SymbolPlace): Frame | undefined {
  if (symbol.length < SYMBOL_HEADER_BYTES) return undefined;
  const type = symbol[0]!;
  const importance = symbol[1]!;
  const length = symbol.readUInt16BE(2);
  if (!FRAME_TYPES.has(type) || type === FrameType.Repair || type === FrameType.Parity) return undefined;
  if (importance !== Importance.Low && importance !== Importance.High) return undefined;
  if (SYMBOL_HEADER_BYTES + length > symbol.length) return undefined;
  return {
    type: type as FrameType,
    flags: place.flags,
    importance,
    copy: 0,
    epoch: place.epoch,
    linkSeq: place.linkSeq,
    session: symbol.readUInt32BE(4),
    seq: symbol.readUInt32BE(8),
    block: place.block,
    keyId: 0,
    payload: symbol.subarray(SYMBOL_HEADER_BYTES, SYMBOL_HEADER_BYTES + length),
    tag: Buffer.alloc(0),
  };
}

export function decodeFrame(datagram: Buffer): Decoded {
  if (datagram.length < HEADER_BYTES) return { ok: false, reason: 'short' };
  if (datagram.readUInt16BE(0) !== FRAME_MAGIC) return { ok: false, reason: 'magic' };
  if (datagram[2] !== FRAME_VERSION) return { ok: false, reason: 'version' };
  const type = datagram[3]!;
  if (!FRAME_TYPES.has(type)) return { ok: false, reason: 'type' };
  const flags = datagram[4]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) return { ok: false, reason: 'flags' };
  const importance = datagram[5]!;
  if (importance !== Importance.Low && importance !== Importance.High) return { ok: false, reason: 'type' };
  const tagLength = datagram[7]!;
  // A tag exactly when the authenticated flag says so.
  if (tagLength > 0 !== ((flags & FrameFlag.Authenticated) !== 0)) return { ok: false, reason: 'flags' };
  const length = datagram.readUInt16BE(30);
  const end = HEADER_BYTES + length + tagLength;
  if (end > datagram.length) return { ok: false, reason: 'truncated' };
  if (end < datagram.length) return { ok: false, reason: 'trailing' };
  const keyId = datagram.readUInt16BE(28);
  const impossible =
    datagram[6]! > MAX_COPY ||
    datagram.readUInt32BE(12) >= SEQ_LIMIT ||
    (flags & FrameFlag.Fec && datagram.readUInt32BE(24) >= SEQ_LIMIT) ||
    (keyId === 0) === ((flags & FrameFlag.Authenticated) !== 0);
  if (impossible) return { ok: false, reason: 'field' };
  return {
    ok: true,
    frame: {
      type: type as FrameType,
      flags,
      importance: importance as Importance,
      copy: datagram[6]!,
      epoch: datagram.readUInt32BE(8),
      linkSeq: datagram.readUInt32BE(12),
      session: datagram.readUInt32BE(16),
      seq: datagram.readUInt32BE(20),
      block: datagram.readUInt32BE(24),
      keyId,
      payload: datagram.subarray(HEADER_BYTES, HEADER_BYTES + length),
      tag: datagram.subarray(HEADER_BYTES + length, end),
    },
  };
}

/** Where a TCP session goes on the far side, carried by its open frame. */
export interface OpenPayload {
  service: string;
  destination: { host: string; port: number };
  client: { address: string; port: number };
}

export function encodeOpen(p: OpenPayload): Buffer {
  return Buffer.from(JSON.stringify(p));
}

const isPort = (v: unknown) => Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536;

/**
 * The open frame's payload, or undefined when it is not one. The destination must be an IP
 * address (the receiver resolves no names) and a port 1-65535.
 */
export function decodeOpen(payload: Buffer): OpenPayload | undefined {
  try {
    const p = JSON.parse(payload.toString('utf8')) as OpenPayload;
    const ok =
      typeof p?.service === 'string' &&
      p.service.length <= 255 &&
      typeof p.destination?.host === 'string' &&
      isIP(p.destination.host) !== 0 &&
      isPort(p.destination.port) &&
      typeof p.client === 'object' &&
      p.client !== null;
    return ok ? p : undefined;
  } catch {
    return undefined;
  }
}

/** A UDP frame's payload: family byte (4 or 6), address, port, then the datagram. */
export function encodeUdpPrefix(address: Buffer, port: number): Buffer {
  const b = Buffer.allocUnsafe(1 + address.length + 2);
  b[0] = address.length === 4 ? 4 : 6;
  address.copy(b, 1);
  b.writeUInt16BE(port, 1 + address.length);
  return b;
}

/**
 * A UDP frame's destination and datagram, or undefined when it cannot be sent: an unknown
 * family, a short prefix, port 0, or an unspecified address (0.0.0.0, ::).
 */
export function decodeUdp(payload: Buffer): { host: string; port: number; data: Buffer } | undefined {
  const family = payload[0];
  const size = family === 4 ? 4 : family === 6 ? 16 : 0;
  if (size === 0 || payload.length < 1 + size + 2) return undefined;
  const addr = payload.subarray(1, 1 + size);
  const port = payload.readUInt16BE(1 + size);
  if (port === 0 || addr.every((b) => b === 0)) return undefined;
  const host = size === 4 ? [...addr].join('.') : ipv6ToString(addr);
  return { host, port, data: payload.subarray(1 + size + 2) };
}

function ipv6ToString(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}

/** Address bytes of a literal IPv4 or IPv6 address. */
export function addressBytes(host: string): Buffer {
  if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) return Buffer.from(host.split('.').map(Number));
  const [head = '', tail = ''] = host.split('::');
  const h = head ? head.split(':') : [];
  const t = host.includes('::') && tail ? tail.split(':') : [];
  const groups = host.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  if (groups.length !== 8) throw new Error(`not an IP address: ${host}`);
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => {
    b.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return b;
}
