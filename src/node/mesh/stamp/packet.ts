/**
 * STAMP test packets, unauthenticated mode (RFC 8762 §4.2.1 and §4.3.1): 44 bytes each way.
 * Timestamps are NTP 64-bit (seconds since 1900 and a binary fraction); the error estimate
 * says "synchronized" (S bit) when both ends share a clock, as the testbed's namespaces do.
 */

export const STAMP_PORT = 862;
export const STAMP_PACKET_BYTES = 44;

/** Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
const NTP_UNIX_OFFSET = 2_208_988_800n;
const NTP_UNIX_OFFSET_S = Number(NTP_UNIX_OFFSET);

/** Error estimate (RFC 4656 §4.1.2): S = 1, Z = 0 (NTP format), scale 0, multiplier 1. */
export const ERROR_ESTIMATE_SYNCED = 0x8001;

export interface SenderPacket {
  seq: number;
  /** When the session-sender sent it, in Unix nanoseconds. */
  txNs: bigint;
  errorEstimate: number;
}

export interface ReflectorPacket {
  /** The reflector's own sequence number (stateful: counts what it received in the session). */
  seq: number;
  /** When the reflector sent it back. */
  txNs: bigint;
  errorEstimate: number;
  /** When the reflector received the sender's packet. */
  rxNs: bigint;
  senderSeq: number;
  senderTxNs: bigint;
  senderErrorEstimate: number;
  /** The received packet's TTL, 0 when the reflector cannot read it. */
  senderTtl: number;
}

export class StampPacketError extends Error {
  override name = 'StampPacketError';
}

/** Where both kinds of packet carry their own send time. */
export const TIMESTAMP_OFFSET = 4;

/**
 * An NTP timestamp from Unix seconds and nanoseconds as plain numbers (what runs between
 * reading the clock and sending; nsec × 2^32 is exact in a double, the division rounds to
 * within a 2^-32 s unit).
 */
export function writeNtpParts(buf: Buffer, offset: number, sec: number, nsec: number): void {
  buf.writeUInt32BE((sec + NTP_UNIX_OFFSET_S) >>> 0, offset);
  buf.writeUInt32BE(Math.floor((nsec * 2 ** 32) / 1e9) >>> 0, offset + 4);
}

export function writeNtp(buf: Buffer, offset: number, unixNs: bigint): void {
  writeNtpParts(buf, offset, Number(unixNs / 1_000_000_000n), Number(unixNs % 1_000_000_000n));
}

export function readNtp(buf: Buffer, offset: number): bigint {
  const seconds = BigInt(buf.readUInt32BE(offset)) - NTP_UNIX_OFFSET;
  const fraction = BigInt(buf.readUInt32BE(offset + 4));
  return seconds * 1_000_000_000n + ((fraction * 1_000_000_000n) >> 32n);
}

/** A packet with the fields both kinds begin with; the MBZ bytes stay zero. */
function packetStarting(p: SenderPacket): Buffer {
  const buf = Buffer.alloc(STAMP_PACKET_BYTES);
  buf.writeUInt32BE(p.seq >>> 0, 0);
  writeNtp(buf, 4, p.txNs);
  buf.writeUInt16BE(p.errorEstimate, 12);
  return buf;
}

export function encodeSender(p: SenderPacket): Buffer {
  return packetStarting(p);
}

/** A session-sender's packet; longer ones are allowed (padding), shorter ones refused. */
export function decodeSender(buf: Buffer): SenderPacket {
  if (buf.length < STAMP_PACKET_BYTES)
    throw new StampPacketError(
      `a STAMP test packet has at least ${STAMP_PACKET_BYTES} bytes, not ${buf.length}`,
    );
  return { seq: buf.readUInt32BE(0), txNs: readNtp(buf, 4), errorEstimate: buf.readUInt16BE(12) };
}

export function encodeReflector(p: ReflectorPacket): Buffer {
  const buf = packetStarting(p);
  writeNtp(buf, 16, p.rxNs);
  buf.writeUInt32BE(p.senderSeq >>> 0, 24);
  writeNtp(buf, 28, p.senderTxNs);
  buf.writeUInt16BE(p.senderErrorEstimate, 36);
  buf.writeUInt8(p.senderTtl, 40);
  return buf;
}

export function decodeReflector(buf: Buffer): ReflectorPacket {
  if (buf.length < STAMP_PACKET_BYTES)
    throw new StampPacketError(
      `a STAMP reflected packet has at least ${STAMP_PACKET_BYTES} bytes, not ${buf.length}`,
    );
  return {
    seq: buf.readUInt32BE(0),
    txNs: readNtp(buf, 4),
    errorEstimate: buf.readUInt16BE(12),
    rxNs: readNtp(buf, 16),
    senderSeq: buf.readUInt32BE(24),
    senderTxNs: readNtp(buf, 28),
    senderErrorEstimate: buf.readUInt16BE(36),
    senderTtl: buf.readUInt8(40),
  };
}
