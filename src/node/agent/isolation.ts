/**
 * Isolation between slices on a shared uplink: HTB on the uplink's egress, one class per
 * slice at its share (rate) with what it may borrow (ceil), classified by the slice's
 * source subnets (u32). A slice flooded to saturation fills only its own class's queue;
 * HTB serves every other class its rate first, so they keep their share.
 *
 *   1:      htb root, default 1:ffff (traffic of no slice: the node's own, routing)
 *   1:1     the uplink's rate
 *   1:<h>   a slice: rate = share % of the uplink, ceil = ceil %; <h> comes from a hash of the
 *           slice's name, so adding or removing a slice never renumbers another's class
 *   1:ffff  the rest: rate = what the shares leave (at least 1 %), ceil = the uplink
 */
import { createHash } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import type { SliceConfig, UplinkConfig } from './config.js';

export interface HtbClass {
  /** `1:10` */
  classid: string;
  /** Who it is for: a slice name, or `(default)`. */
  owner: string;
  rateKbit: number;
  ceilKbit: number;
  /** Source subnets classified into it. */
  subnets: string[];
}

export interface HtbSpec {
  rateKbit: number;
  classes: HtbClass[];
}

export const DEFAULT_MINOR = 0xffff;
const FILTER_PRIO = 10;

export function htbSpec(
  uplink: UplinkConfig,
  slices: SliceConfig[],
  subnetsOf: { name: string; subnets: string[] }[],
): HtbSpec {
  const rateKbit = Math.round(uplink.rateMbit * 1000);
  const classes: HtbClass[] = [];
  let shared = 0;
  const minors = classMinors(slices.map((s) => s.name));
  slices.forEach((s) => {
    if (s.uplink !== uplink.interface) return;
    shared += s.share;
    classes.push({
      classid: `1:${minors.get(s.name)!.toString(16)}`,
      owner: s.name,
      rateKbit: Math.max(8, Math.round((rateKbit * s.share) / 100)),
      ceilKbit: Math.max(8, Math.round((rateKbit * s.ceil) / 100)),
      subnets: subnetsOf.find((x) => x.name === s.name)?.subnets ?? [],
    });
  });
  classes.push({
    classid: `1:${DEFAULT_MINOR.toString(16)}`,
    owner: '(default)',
    rateKbit: Math.max(8, Math.round((rateKbit * Math.max(1, 100 - shared)) / 100)),
    ceilKbit: rateKbit,
    subnets: [],
  });
  return { rateKbit, classes };
}

/** Class minors 0x10..0xffef from a hash of each slice name; a rare collision takes the next free one. */
export function classMinors(names: string[]): Map<string, number> {
  const taken = new Set<number>();
  const minors = new Map<string, number>();
  for (const name of [...names].sort()) {
    let m = 0x10 + (createHash('sha256').update(name).digest().readUInt16LE(0) % 0xffe0);
    while (taken.has(m)) m = m + 1 >= 0xfff0 ? 0x10 : m + 1;
    taken.add(m);
    minors.set(name, m);
  }
  return minors;
}

/**
 * A burst of ~5 ms at the class's ceil (and never under two 64 KiB GSO packets): veth hands
 * HTB whole GSO packets, and a burst smaller than one makes the class overshoot and stall.
 */
function burstBytes(kbit: number): number {
  return Math.max(2 * 65_536 + 2 * 1514, Math.round((kbit * 1000) / 8 / 200));
}

/** The `tc` argument lists that make the uplink's HTB tree exactly `spec` (replace is idempotent). */
export function htbCommands(iface: string, spec: HtbSpec, createRoot: boolean): string[][] {
  const cmds: string[][] = [
    // HTB cannot `change` its root in place; an existing root is kept and its classes replaced.
    ...(createRoot
      ? [
          [
            'qdisc',
            'replace',
            'dev',
            iface,
            'root',
            'handle',
            '1:',
            'htb',
            'default',
            DEFAULT_MINOR.toString(16),
          ],
        ]
      : []),
    [
      'class',
      'replace',
      'dev',
      iface,
      'parent',
      '1:',
      'classid',
      '1:1',
      'htb',
      ...rates(spec.rateKbit, spec.rateKbit),
    ],
  ];
  for (const c of spec.classes) {
    cmds.push([
      'class',
      'replace',
      'dev',
      iface,
      'parent',
      '1:1',
      'classid',
      c.classid,
      'htb',
      ...rates(c.rateKbit, c.ceilKbit),
    ]);
  }
  // Filters cannot be replaced by content: drop ours (one priority) and add them again.
  cmds.push(['filter', 'del', 'dev', iface, 'parent', '1:', 'prio', String(FILTER_PRIO)]);
  for (const c of spec.classes) {
    for (const net of c.subnets) {
      cmds.push([
        'filter',
        'add',
        'dev',
        iface,
        'parent',
        '1:',
        'protocol',
        'ip',
        'prio',
        String(FILTER_PRIO),
        'u32',
        'match',
        'ip',
        'src',
        net,
        'flowid',
        c.classid,
      ]);
    }
  }
  return cmds;
}

function rates(rateKbit: number, ceilKbit: number): string[] {
  return [
    'rate',
    `${rateKbit}kbit`,
    'ceil',
    `${ceilKbit}kbit`,
    'burst',
    String(burstBytes(ceilKbit)),
    'cburst',
    String(burstBytes(ceilKbit)),
    'quantum',
    '1514',
  ];
}

/** What `tc` shows of an uplink's HTB tree, reduced to what the spec says. */
export interface ObservedHtb {
  root: boolean;
  classes: Map<string, { rateKbit: number; ceilKbit: number }>;
  /** classid → source subnets */
  filters: Map<string, string[]>;
}

const UNITS: Record<string, number> = { bit: 1e-3, kbit: 1, mbit: 1e3, gbit: 1e6, tbit: 1e9 };

export function parseRateKbit(text: string): number {
  const m = /^([\d.]+)([KMGT]?bit)$/i.exec(text);
  if (!m) return Number.NaN;
  return Number(m[1]) * (UNITS[m[2]!.toLowerCase()] ?? Number.NaN);
}

/** `tc class show` (text: HTB classes have no JSON form) → classid → rates. */
export function parseHtbClasses(text: string): ObservedHtb['classes'] {
  const classes: ObservedHtb['classes'] = new Map();
  for (const line of text.split('\n')) {
    const m = /^class htb (\S+) .*?rate (\S+) ceil (\S+)/.exec(line);
    if (m) classes.set(m[1]!, { rateKbit: parseRateKbit(m[2]!), ceilKbit: parseRateKbit(m[3]!) });
  }
  return classes;
}

interface U32Filter {
  pref?: number;
  options?: { flowid?: string; match?: { value: string; mask: string; off: number } };
}

/** `tc -j filter show` → classid → source subnets of our u32 filters. */
export function parseU32Filters(json: string): ObservedHtb['filters'] {
  const filters: ObservedHtb['filters'] = new Map();
  for (const f of JSON.parse(json || '[]') as U32Filter[]) {
    const m = f.options?.match;
    if (f.pref !== FILTER_PRIO || !f.options?.flowid || !m || m.off !== 12) continue;
    const addr = ipaddr.fromByteArray([...Buffer.from(m.value.padStart(8, '0'), 'hex')]);
    const len =
      ipaddr.IPv4.parse(
        ipaddr.fromByteArray([...Buffer.from(m.mask.padStart(8, '0'), 'hex')]).toString(),
      ).prefixLengthFromSubnetMask() ?? 32;
    const list = filters.get(f.options.flowid) ?? [];
    list.push(`${addr.toString()}/${len}`);
    filters.set(f.options.flowid, list);
  }
  return filters;
}

const close = (a: number, b: number) => Math.abs(a - b) <= Math.max(1, b * 0.01);

/** What differs between the uplink's HTB tree and the spec; empty when it matches. */
export function htbDrift(spec: HtbSpec, seen: ObservedHtb): string[] {
  if (!seen.root) return ['no HTB root qdisc'];
  const problems: string[] = [];
  const root = seen.classes.get('1:1');
  if (!root || !close(root.rateKbit, spec.rateKbit))
    problems.push('uplink class 1:1 missing or at another rate');
  for (const c of spec.classes) {
    const s = seen.classes.get(c.classid);
    if (!s) problems.push(`class ${c.classid} (${c.owner}) missing`);
    else if (!close(s.rateKbit, c.rateKbit) || !close(s.ceilKbit, c.ceilKbit)) {
      problems.push(
        `class ${c.classid} (${c.owner}) at ${s.rateKbit}/${s.ceilKbit} kbit, wants ${c.rateKbit}/${c.ceilKbit}`,
      );
    }
    const want = [...c.subnets].sort().join(',');
    const have = [...(seen.filters.get(c.classid) ?? [])].sort().join(',');
    if (want !== have) problems.push(`filters of ${c.classid} (${c.owner}) are [${have}], want [${want}]`);
  }
  return problems;
}
