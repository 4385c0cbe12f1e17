/**
 * What the kernel has: namespaces, links and addresses, rules and routes, HTB trees,
 * forwarding, VM processes — read with `ip`/`tc -j` and /proc, reduced to what the plan
 * compares.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { run } from '../../shared/exec.js';
import { inNetns } from '../../shared/netns.js';
import type { RuleSpec } from './desired.js';
import { type ObservedHtb, parseHtbClasses, parseU32Filters } from './isolation.js';
import { listVms, type RunningVm, runningVm } from './vm.js';

export interface LinkInfo {
  name: string;
  ifindex: number;
  kind?: string;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Has carrier (IFF_LOWER_UP): for a veth, its peer is up too. */
  lowerUp: boolean;
  master?: string;
  alias?: string;
  /** `10.77.101.1/24` */
  addrs: string[];
}

export interface ObservedRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  type?: string;
  metric?: number;
}

export interface ObservedMember {
  links: Map<string, LinkInfo>;
  defaultVia?: string;
}

export interface Observed {
  namespaces: Set<string>;
  /** The node's VMs with a pid file: each one's process, or null when it is not running. */
  vms: Map<string, RunningVm | null>;
  /** Links of the node namespace. */
  links: Map<string, LinkInfo>;
  /** Inspected member namespaces only: a member missing here was not looked into. */
  members: Map<string, ObservedMember>;
  /** Rules at the agent's priorities; undefined when not looked at this time. */
  rules?: RuleSpec[];
  /** Routes of the management table. */
  managementRoutes?: ObservedRoute[];
  htb: Map<string, ObservedHtb>;
  forwarding?: boolean;
  defaultVia?: string;
}

const nsArgs = (netns: string | undefined) => (netns ? ['-n', netns] : []);

export function listNamespaces(): Set<string> {
  try {
    return new Set(readdirSync('/run/netns'));
  } catch {
    return new Set();
  }
}

interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  master?: string;
  ifalias?: string;
  linkinfo?: { info_kind?: string };
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

export async function readLinks(netns: string | undefined): Promise<Map<string, LinkInfo>> {
  const { stdout } = await run('ip', [...nsArgs(netns), '-j', '-d', 'addr', 'show']);
  const links = new Map<string, LinkInfo>();
  for (const l of JSON.parse(stdout || '[]') as IpLink[]) {
    links.set(l.ifname, {
      name: l.ifname,
      ifindex: l.ifindex,
      ...(l.linkinfo?.info_kind ? { kind: l.linkinfo.info_kind } : {}),
      up: l.flags.includes('UP'),
      lowerUp: l.flags.includes('LOWER_UP'),
      ...(l.master ? { master: l.master } : {}),
      ...(l.ifalias ? { alias: l.ifalias } : {}),
      addrs: (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
    });
  }
  return links;
}

interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  type?: string;
  metric?: number;
}

export async function readRoutes(
  netns: string | undefined,
  table: number | 'main',
): Promise<ObservedRoute[]> {
  const { stdout } = await run('ip', [...nsArgs(netns), '-j', 'route', 'show', 'table', String(table)]).catch(
    () => ({ stdout: '[]' }), // a table that does not exist yet
  );
  return (JSON.parse(stdout || '[]') as IpRoute[]).map((r) => ({
    dst: r.dst,
    ...(r.gateway ? { gateway: r.gateway } : {}),
    ...(r.dev ? { dev: r.dev } : {}),
    ...(r.type && r.type !== 'unicast' ? { type: r.type } : {}),
    ...(r.metric !== undefined ? { metric: r.metric } : {}),
  }));
}

interface IpRule {
  priority: number;
  dst?: string;
  dstlen?: number;
  iif?: string;
  table?: string;
  action?: string;
}

export async function readRules(netns: string | undefined, prefs: number[]): Promise<RuleSpec[]> {
  const { stdout } = await run('ip', [...nsArgs(netns), '-j', 'rule', 'show']);
  return (JSON.parse(stdout || '[]') as IpRule[])
    .filter((r) => prefs.includes(r.priority))
    .map((r) => ({
      pref: r.priority,
      ...(r.iif ? { iif: r.iif } : {}),
      to: r.dst === undefined ? 'all' : `${r.dst}/${r.dstlen ?? 32}`,
      action: r.action === 'prohibit' ? 'prohibit' : { table: Number(r.table) },
    }));
}

export async function readHtb(netns: string | undefined, iface: string): Promise<ObservedHtb> {
  const tc = (...args: string[]) => run('tc', [...nsArgs(netns), ...args]).then((r) => r.stdout);
  const qdiscs = JSON.parse((await tc('-j', 'qdisc', 'show', 'dev', iface)) || '[]') as {
    kind: string;
    handle: string;
    root?: boolean;
  }[];
  const root = qdiscs.some((q) => q.root && q.kind === 'htb' && q.handle === '1:');
  if (!root) return { root, classes: new Map(), filters: new Map() };
  return {
    root,
    classes: parseHtbClasses(await tc('class', 'show', 'dev', iface)),
    filters: parseU32Filters(await tc('-j', 'filter', 'show', 'dev', iface, 'parent', '1:')),
  };
}

/** The VMs of this node: those with a pid file under `prefix` (a running VM always has one). */
export function readVms(prefix: string): Map<string, RunningVm | null> {
  return new Map(listVms(prefix).map((name) => [name, runningVm(name) ?? null]));
}

export async function readMember(netns: string): Promise<ObservedMember> {
  const links = await readLinks(netns);
  const routes = await readRoutes(netns, 'main');
  const def = routes.find((r) => r.dst === 'default');
  return { links, ...(def?.gateway ? { defaultVia: def.gateway } : {}) };
}

export function readForwarding(netns: string | undefined): boolean {
  return inNetns(netns, () => readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() === '1');
}
