/**
 * CIDR prefixes as bytes: parsed once, masked to their length, keyed for a hash lookup per
 * prefix length, and compared for containment and overlap (two prefixes are either nested
 * or disjoint, so they overlap exactly when one contains the other).
 */
import ipaddr from 'ipaddr.js';

export type Kind = 'ipv4' | 'ipv6';

export interface Cidr {
  kind: Kind;
  bits: number;
  /** The network address, host bits zeroed. */
  bytes: number[];
  text: string;
}

/** The address bytes with every bit past `bits` zeroed, as a map key. */
export function maskedKey(bytes: number[], bits: number): string {
  let key = '';
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    key += ((bytes[i] as number) & ((0xff << (8 - keep)) & 0xff)).toString(16).padStart(2, '0');
  }
  return key;
}

/** An address as bytes, IPv4-mapped IPv6 as its IPv4 address; null for anything else. */
export function addressBytes(ip: string): { kind: Kind; bytes: number[] } | null {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.parse(ip);
  } catch {
    return null;
  }
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress())
    addr = (addr as ipaddr.IPv6).toIPv4Address();
  return { kind: addr.kind() as Kind, bytes: addr.toByteArray() };
}

export function parseCidr(text: string): Cidr {
  let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
  try {
    if (text.length > 64) throw new Error('too long');
    parsed = ipaddr.parseCIDR(text);
  } catch {
    throw new Error(`"${text.slice(0, 64)}" is not a CIDR prefix (e.g. 10.77.1.0/24 or fd00:77::/64)`);
  }
  const [net, bits] = parsed;
  const bytes = net.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i] = (bytes[i] as number) & ((0xff << (8 - keep)) & 0xff);
  }
  return { kind: net.kind() as Kind, bits, bytes, text };
}

/** Whether `outer` holds every address of `inner`. */
export function contains(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.kind === inner.kind &&
    outer.bits <= inner.bits &&
    maskedKey(inner.bytes, outer.bits) === maskedKey(outer.bytes, outer.bits)
  );
}

export function overlap(a: Cidr, b: Cidr): boolean {
  return contains(a, b) || contains(b, a);
}

/** First and last address as numbers (for a sweep over many prefixes). */
export function span(c: Cidr): [bigint, bigint] {
  let lo = 0n;
  for (const b of c.bytes) lo = (lo << 8n) | BigInt(b);
  const hostBits = BigInt(c.bytes.length * 8 - c.bits);
  return [lo, lo | ((1n << hostBits) - 1n)];
}

/**
 * The first pair (one of `mine`, one of `theirs`) that overlaps, in O((m + t) log(m + t)):
 * sorted by first address, a prefix overlaps one of the other side exactly when it starts
 * before the furthest end seen so far on that side.
 */
export function firstOverlap<T extends { cidr: Cidr }>(mine: Cidr[], theirs: T[]): [Cidr, T] | undefined {
  type Item = { lo: bigint; hi: bigint; kind: Kind; mine?: Cidr; theirs?: T };
  const items: Item[] = [
    ...mine.map((c) => ({ ...spanOf(c), kind: c.kind, mine: c })),
    ...theirs.map((t) => ({ ...spanOf(t.cidr), kind: t.cidr.kind, theirs: t })),
  ];
  items.sort((a, b) =>
    a.kind !== b.kind ? (a.kind < b.kind ? -1 : 1) : a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0,
  );
  let kind: Kind | undefined;
  let mineEnd: Item | undefined;
  let theirEnd: Item | undefined;
  for (const it of items) {
    if (it.kind !== kind) {
      kind = it.kind;
      mineEnd = undefined;
      theirEnd = undefined;
    }
    if (it.mine) {
      if (theirEnd?.theirs && it.lo <= theirEnd.hi) return [it.mine, theirEnd.theirs];
      if (!mineEnd || it.hi > mineEnd.hi) mineEnd = it;
    } else if (it.theirs) {
      if (mineEnd?.mine && it.lo <= mineEnd.hi) return [mineEnd.mine, it.theirs];
      if (!theirEnd || it.hi > theirEnd.hi) theirEnd = it;
    }
  }
  return undefined;
}

function spanOf(c: Cidr): { lo: bigint; hi: bigint } {
  const [lo, hi] = span(c);
  return { lo, hi };
}
