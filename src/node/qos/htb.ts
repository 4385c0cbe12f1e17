/**
 * The HTB tree of the QoS classes on one egress interface. It extends the agent's tree
 * (src/node/agent/isolation.ts) rather than replacing it: the classes hang under 1:1 with
 * minors 0xfff0.. (the agent's slices use 0x10..0xffef, its default 0xffff), and the program
 * puts packets in them through skb->priority, which HTB reads before any u32 filter. On an
 * interface without an HTB root, this module creates the root, 1:1 at the link's rate and
 * the default class 1:ffff, laid out as the agent would.
 */
import { parseRateKbit } from '../agent/isolation.js';
import type { CompiledClass } from './compile.js';

export interface QosLinkSpec {
  iface: string;
  rateBps: number;
  /** Ceilings lowered on this link only, by class name (the tower's closed loop). */
  limits?: Map<string, number>;
}

const kbit = (bps: number) => `${Math.max(8, Math.round(bps / 1000))}kbit`;

/** A burst of ~5 ms at the ceiling, never under two 64 KiB GSO packets (veth hands HTB those). */
function burst(bps: number): string {
  return String(Math.max(2 * 65_536 + 2 * 1514, Math.round(bps / 8 / 200)));
}

/** HTB prio is 0..7, 0 served first; a class's priority maps onto it. */
const htbPrio = (priority: number) => String(Math.min(7, Math.max(0, priority)));

export function rootCommands(link: QosLinkSpec, guaranteedBps: number): string[][] {
  const dev = ['dev', link.iface];
  return [
    ['qdisc', 'replace', ...dev, 'root', 'handle', '1:', 'htb', 'default', 'ffff'],
    ...defaultClassCommands(link, guaranteedBps),
  ];
}

/** `tc class replace` of one HTB class; the bursts follow the ceiling. */
function htbClass(
  iface: string,
  parent: string,
  classid: string,
  rateBps: number,
  ceilBps: number,
  prio: number,
): string[] {
  return [
    'class',
    'replace',
    'dev',
    iface,
    'parent',
    parent,
    'classid',
    classid,
    'htb',
    'rate',
    kbit(rateBps),
    'ceil',
    kbit(ceilBps),
    'burst',
    burst(ceilBps),
    'cburst',
    burst(ceilBps),
    'prio',
    htbPrio(prio),
    'quantum',
    '1514',
  ];
}

/** 1:1 at the link's rate and 1:ffff with what the QoS guarantees leave (at least 1 %). */
export function defaultClassCommands(link: QosLinkSpec, guaranteedBps: number): string[][] {
  const rest = Math.max(link.rateBps / 100, link.rateBps - guaranteedBps);
  return [
    htbClass(link.iface, '1:', '1:1', link.rateBps, link.rateBps, 0),
    htbClass(link.iface, '1:1', '1:ffff', rest, link.rateBps, 7),
  ];
}

/** A class's queue holds ~100 ms at its ceiling (at least 16 packets): a lowered ceiling drains fast. */
export const QUEUE_MS = 100;

export function queueLimit(ceilBps: number): number {
  return Math.max(16, Math.round((ceilBps * QUEUE_MS) / 1000 / 8 / 1514));
}

/** Each class, then its leaf queue (a pfifo whose handle major is the class's minor). */
export function classCommands(link: QosLinkSpec, classes: CompiledClass[]): string[][] {
  return classes.flatMap((c) => {
    const limit = link.limits?.get(c.name);
    const ceil = Math.min(
      link.rateBps,
      c.ceilingBps > 0 ? c.ceilingBps : link.rateBps,
      limit ?? Number.POSITIVE_INFINITY,
    );
    const rate = Math.min(ceil, Math.max(8000, c.guaranteedBps));
    const minor = c.classid.split(':')[1] ?? '';
    return [
      htbClass(link.iface, '1:1', c.classid, rate, ceil, c.priority),
      [
        'qdisc',
        'replace',
        'dev',
        link.iface,
        'parent',
        c.classid,
        'handle',
        `${minor}:`,
        'pfifo',
        'limit',
        String(queueLimit(ceil)),
      ],
    ];
  });
}

export function deleteClassCommand(iface: string, classid: string): string[] {
  return ['class', 'del', 'dev', iface, 'classid', classid];
}

export interface HtbClassStats {
  classid: string;
  rateKbit: number;
  ceilKbit: number;
  bytes: number;
  packets: number;
  drops: number;
}

/** `tc -s class show dev X` → per class: rates and what it sent and dropped. */
export function parseClassStats(text: string): HtbClassStats[] {
  const out: HtbClassStats[] = [];
  let cur: HtbClassStats | undefined;
  for (const line of text.split('\n')) {
    const head = /^class htb (\S+) .*?rate (\S+) ceil (\S+)/.exec(line);
    if (head) {
      cur = {
        classid: head[1]!,
        rateKbit: parseRateKbit(head[2]!),
        ceilKbit: parseRateKbit(head[3]!),
        bytes: 0,
        packets: 0,
        drops: 0,
      };
      out.push(cur);
      continue;
    }
    const sent = /Sent (\d+) bytes (\d+) pkt \(dropped (\d+)/.exec(line);
    if (sent && cur) {
      cur.bytes = Number(sent[1]);
      cur.packets = Number(sent[2]);
      cur.drops = Number(sent[3]);
    }
  }
  return out;
}
