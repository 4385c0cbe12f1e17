/** Decodes struct flow_key (bpf/flow_key.h) into a FlowKey, with the interface named. */
import ipaddr from 'ipaddr.js';
import { FLOWMON_DIR_EGRESS, flowKey } from '../../bpf/types.js';
import type { FlowKey } from './records.js';

const L = flowKey.offset;

export function formatAddress(raw: Buffer, offset: number, version: number): string {
  if (version === 4) return `${raw[offset]}.${raw[offset + 1]}.${raw[offset + 2]}.${raw[offset + 3]}`;
  return ipaddr.fromByteArray([...raw.subarray(offset, offset + 16)]).toString();
}

export function decodeFlowKey(raw: Buffer, offset: number, ifaceName: (ifindex: number) => string): FlowKey {
  const ipVersion = raw[offset + L.ip_version] === 6 ? 6 : 4;
  return {
    iface: ifaceName(raw.readUInt32LE(offset + L.ifindex)),
    direction: raw[offset + L.direction] === FLOWMON_DIR_EGRESS ? 'egress' : 'ingress',
    ipVersion,
    src: formatAddress(raw, offset + L.src, ipVersion),
    dst: formatAddress(raw, offset + L.dst, ipVersion),
    srcPort: raw.readUInt16LE(offset + L.src_port),
    dstPort: raw.readUInt16LE(offset + L.dst_port),
    protocol: raw[offset + L.protocol] ?? 0,
  };
}

const KEY_WORDS = flowKey.size / 4;

/** FNV-1a over the key's 32-bit words, folded into the small-integer range V8 maps handle fastest. */
export function hashKey(words: Uint32Array, at: number): number {
  let h = 0x811c9dc5;
  for (let w = 0; w < KEY_WORDS; w++) h = Math.imul(h ^ (words[at + w] as number), 16777619);
  return h >>> 2;
}

export function sameKey(a: Uint32Array, b: Uint32Array, at: number): boolean {
  for (let w = 0; w < KEY_WORDS; w++) if (a[w] !== b[at + w]) return false;
  return true;
}

interface Cached {
  words: Uint32Array;
  key: FlowKey;
  next: Cached | undefined;
}

/**
 * Decoded keys by their raw words, for records that repeat a flow's key (HTTP events of
 * one connection): the addresses are formatted once. Bounded: emptied past `max` keys.
 */
export class FlowKeyCache {
  private readonly byHash = new Map<number, Cached>();
  private view: Uint32Array | undefined;
  /** The last key returned: events of one flow tend to come in a row. */
  private last: Cached | undefined;

  constructor(
    private readonly ifaceName: (ifindex: number) => string,
    private readonly max = 16384,
  ) {}

  decode(raw: Buffer, offset: number): FlowKey {
    if (raw.byteOffset % 4 !== 0 || offset % 4 !== 0) return decodeFlowKey(raw, offset, this.ifaceName);
    const v = this.view;
    if (v?.buffer !== raw.buffer || v.byteOffset !== raw.byteOffset || v.length !== raw.length >> 2)
      this.view = new Uint32Array(raw.buffer, raw.byteOffset, raw.length >> 2);
    const words = this.view as Uint32Array;
    const at = offset >> 2;
    if (at + KEY_WORDS > words.length) return decodeFlowKey(raw, offset, this.ifaceName);
    const last = this.last;
    if (last && sameKey(last.words, words, at)) return last.key;
    const hash = hashKey(words, at);
    const head = this.byHash.get(hash);
    for (let c = head; c; c = c.next) {
      if (!sameKey(c.words, words, at)) continue;
      this.last = c;
      return c.key;
    }
    if (this.byHash.size >= this.max) this.byHash.clear();
    const cached = {
      words: words.slice(at, at + KEY_WORDS),
      key: decodeFlowKey(raw, offset, this.ifaceName),
      next: head,
    };
    this.byHash.set(hash, cached);
    this.last = cached;
    return cached.key;
  }
}
