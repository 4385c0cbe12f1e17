/**
 * The rule compiler: a QoS policy → the entries of one generation of bpf/qos.bpf.c's tables.
 * Rules keep their order (the first that matches wins); each side's prefixes become LPM
 * entries whose value is the set of rules that cover the prefix, so one longest-prefix
 * lookup per side gives every candidate and the program only checks ports, protocol,
 * DSCP and interface of the candidates in both sets.
 */
import ipaddr from 'ipaddr.js';
import {
  QOS_ANY_DSCP,
  QOS_MAX_CLASSES,
  QOS_MAX_RULES,
  QOS_POLICE_DROP,
  QOS_POLICE_REMARK,
  QOS_RULE_WORDS,
  type QosRuleEntry,
} from '../../bpf/types.js';
import type { QosPolicy__Output } from '../../proto/index.js';

/** HTB minors of the QoS classes: 0xfff0 + index, outside the agent's slice range (0x10..0xffef). */
export const QOS_MINOR_BASE = 0xfff0;
/** 0xffff is the HTB default class, so 15 QoS classes at most. */
export const QOS_CLASS_LIMIT = Math.min(QOS_MAX_CLASSES, 0xffff - QOS_MINOR_BASE);
export const HTB_MAJOR = 1;

export interface Prefix {
  /** 16 bytes: IPv6, or IPv4 mapped (::ffff:a.b.c.d) */
  addr: Uint8Array;
  /** over the 128 bits */
  len: number;
}

export interface CompiledClass {
  name: string;
  index: number;
  classid: string;
  priority: number;
  dscp: number;
  guaranteedBps: number;
  ceilingBps: number;
}

export interface CompiledPolicy {
  classes: CompiledClass[];
  rules: QosRuleEntry[];
  ruleNames: string[];
  src: { prefix: Prefix; bits: bigint[] }[];
  dst: { prefix: Prefix; bits: bigint[] }[];
}

export function parsePrefix(text: string): Prefix {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  let len: number;
  try {
    [addr, len] = text.includes('/') ? ipaddr.parseCIDR(text) : [ipaddr.parse(text), -1];
  } catch {
    throw new Error(`"${text}" is not an address or prefix`);
  }
  if (addr.kind() === 'ipv4') {
    const v4 = addr as ipaddr.IPv4;
    return { addr: Uint8Array.from(v4.toIPv4MappedAddress().toByteArray()), len: 96 + (len < 0 ? 32 : len) };
  }
  return { addr: Uint8Array.from(addr.toByteArray()), len: len < 0 ? 128 : len };
}

/** The prefix with every bit past its length cleared. */
function masked(p: Prefix): Prefix {
  const addr = Uint8Array.from(p.addr);
  for (let bit = p.len; bit < 128; bit++) addr[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { addr, len: p.len };
}

/** Whether `outer` contains `inner`. */
export function covers(outer: Prefix, inner: Prefix): boolean {
  if (outer.len > inner.len) return false;
  for (let bit = 0; bit < outer.len; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((outer.addr[bit >> 3]! & mask) !== (inner.addr[bit >> 3]! & mask)) return false;
  }
  return true;
}

const keyOf = (p: Prefix) => `${Buffer.from(p.addr).toString('hex')}/${p.len}`;

function setBit(bits: bigint[], i: number): void {
  bits[i >> 6] = (bits[i >> 6] ?? 0n) | (1n << BigInt(i & 63));
}

/** LPM entries of one side: each distinct prefix, and the root (/0) for rules with none. */
function side(prefixesOf: Prefix[][]): { prefix: Prefix; bits: bigint[] }[] {
  const zero = () => Array.from({ length: QOS_RULE_WORDS }, () => 0n);
  const distinct = new Map<string, Prefix>();
  for (const list of prefixesOf) for (const p of list) distinct.set(keyOf(p), p);
  const root: Prefix = { addr: new Uint8Array(16), len: 0 };
  distinct.set(keyOf(root), root);
  return [...distinct.values()].map((prefix) => {
    const bits = zero();
    prefixesOf.forEach((list, i) => {
      if (list.length === 0 || list.some((q) => covers(q, prefix))) setBit(bits, i);
    });
    return { prefix, bits };
  });
}

const portRange = (min: number, max: number): [number, number] =>
  min === 0 && max === 0 ? [0, 65535] : [min, max === 0 ? min : max];

/**
 * Compiles `policy`; `ifindexOf` resolves a rule's interface name. Throws on what the
 * kernel tables cannot hold (the tower validates the rest before it sends).
 */
export function compilePolicy(
  policy: QosPolicy__Output,
  ifindexOf: (iface: string) => number,
): CompiledPolicy {
  if (policy.classes.length > QOS_CLASS_LIMIT)
    throw new Error(`${policy.classes.length} classes: at most ${QOS_CLASS_LIMIT}`);
  if (policy.rules.length > QOS_MAX_RULES)
    throw new Error(`${policy.rules.length} rules: at most ${QOS_MAX_RULES}`);
  const classes: CompiledClass[] = policy.classes.map((c, index) => ({
    name: c.name,
    index,
    classid: `${HTB_MAJOR}:${(QOS_MINOR_BASE + index).toString(16)}`,
    priority: c.priority,
    dscp: c.dscp,
    guaranteedBps: c.guaranteedBps,
    ceilingBps: c.ceilingBps,
  }));
  const byName = new Map(classes.map((c) => [c.name, c]));
  const rules = policy.rules.map((r): QosRuleEntry => {
    const cls = byName.get(r.class);
    if (!cls) throw new Error(`rule "${r.name}": unknown class "${r.class}"`);
    const [srcPortMin, srcPortMax] = portRange(r.srcPortMin, r.srcPortMax);
    const [dstPortMin, dstPortMax] = portRange(r.dstPortMin, r.dstPortMax);
    const policeRate = BigInt(Math.round(r.policeBps / 8));
    return {
      srcPortMin,
      srcPortMax,
      dstPortMin,
      dstPortMax,
      ifindex: r.iface ? ifindexOf(r.iface) : 0,
      priority: (HTB_MAJOR << 16) | (QOS_MINOR_BASE + cls.index),
      protocol: r.protocol,
      matchDscp: r.matchDscp < 0 ? QOS_ANY_DSCP : r.matchDscp,
      setDscp: cls.dscp & 0x3f,
      policeAction: r.policeRemark ? QOS_POLICE_REMARK : QOS_POLICE_DROP,
      policeDscp: r.policeDscp & 0x3f,
      classIndex: cls.index,
      policeRate,
      // 10 ms at the rate, and never under two full-size GSO packets
      policeBurst: policeRate > 0n ? BigInt(Math.max(2 * 65_536, Math.round(r.policeBps / 8 / 100))) : 0n,
    };
  });
  const parse = (list: string[], rule: string) =>
    list.map((t) => {
      try {
        return masked(parsePrefix(t));
      } catch (err) {
        throw new Error(`rule "${rule}": ${(err as Error).message}`);
      }
    });
  return {
    classes,
    rules,
    ruleNames: policy.rules.map((r) => r.name),
    src: side(policy.rules.map((r) => parse(r.srcPrefixes, r.name))),
    dst: side(policy.rules.map((r) => parse(r.dstPrefixes, r.name))),
  };
}
