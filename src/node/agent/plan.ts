/**
 * Desired vs observed → the list of typed actions that closes the gap, in an order that
 * works (a namespace before its veth, a switch before its ports). Pure: no I/O, so every
 * case is tested without a kernel. Nothing already right appears in the plan, which is
 * how `apply` changes only what changed and a re-apply of the same config does nothing.
 */
import {
  aliasPrefix,
  type Desired,
  type DesiredManagement,
  type DesiredMember,
  type DesiredSlice,
  type DesiredUplink,
  ISOLATION_PREF,
  MANAGEMENT_PREF,
  MEMBER_IFACE,
  type RouteSpec,
  type RuleSpec,
} from './desired.js';
import { type HtbSpec, htbDrift } from './isolation.js';
import type { LinkInfo, Observed, ObservedRoute } from './observe.js';
import type { VmSpec } from './vm.js';

/** One kernel change. `member`: run inside that member namespace; otherwise in the node's. */
export type Op =
  | { op: 'add-netns'; netns: string }
  | { op: 'del-netns'; netns: string }
  | { op: 'add-bridge'; name: string; alias: string }
  | { op: 'add-vlan'; name: string; parent: string; id: number; alias: string }
  | { op: 'add-veth'; port: string; alias: string; peerNetns: string; peerMac: string }
  | { op: 'add-tap'; name: string; alias: string }
  | { op: 'start-vm'; vm: VmSpec }
  | { op: 'stop-vm'; name: string }
  | { op: 'del-link'; name: string }
  | { op: 'link-up'; name: string; member?: string }
  | { op: 'set-master'; name: string; master: string }
  | { op: 'set-addr'; name: string; addr: string; member?: string }
  | { op: 'del-addr'; name: string; addr: string }
  | { op: 'set-default-route'; via: string; member?: string }
  | { op: 'del-default-route'; via: string }
  | { op: 'set-htb'; iface: string; spec: HtbSpec; stale: string[]; createRoot: boolean }
  | { op: 'del-htb'; iface: string }
  | { op: 'add-rule'; rule: RuleSpec }
  | { op: 'del-rule'; rule: RuleSpec }
  | { op: 'set-routes'; table: number; routes: RouteSpec[] }
  | { op: 'flush-table'; table: number }
  | { op: 'set-forwarding'; on: boolean }
  /** Nothing the agent may do: the entity is not its to make (an uplink that is not there). */
  | { op: 'none' };

export interface Action {
  /** What it concerns, e.g. `slice a switch tm1x2y3-a`, `slice a member web`, `uplink wan0`. */
  entity: string;
  /** What is wrong: `missing`, `down`, `address 10.77.101.1/24 missing`, ... */
  problem: string;
  op: Op;
}

export interface PlanInput {
  desired: Desired;
  observed: Observed;
  /** What the last applied config made: what it has and this one lacks is removed. */
  previous?: Desired;
}

export function plan({ desired, observed, previous }: PlanInput): Action[] {
  const actions: Action[] = [];
  const add = (entity: string, problem: string, op: Op) => actions.push({ entity, problem, op });
  if (desired.forwarding && observed.forwarding === false) {
    add('node forwarding', 'IPv4 forwarding is off', { op: 'set-forwarding', on: true });
  }
  if (desired.management) planManagement(desired.management, observed, add);
  for (const u of desired.uplinks) planUplink(u, observed, add);
  for (const s of desired.slices) planSlice(s, observed, add);
  planRules(desired.rules, observed, add);
  planStale(desired, observed, previous, add);
  return actions;
}

type Add = (entity: string, problem: string, op: Op) => void;

/** An interface the agent configures but does not create (uplinks, management). */
function planHostInterface(
  entity: string,
  iface: string,
  addr: string | undefined,
  link: LinkInfo | undefined,
  add: Add,
): boolean {
  if (!link) {
    add(entity, `interface ${iface} does not exist (the agent does not create it)`, { op: 'none' });
    return false;
  }
  if (!link.up) add(entity, 'down', { op: 'link-up', name: iface });
  if (addr && !link.addrs.includes(addr))
    add(entity, `address ${addr} missing`, { op: 'set-addr', name: iface, addr });
  return true;
}

function planManagement(m: DesiredManagement, observed: Observed, add: Add): void {
  const entity = `management ${m.iface}`;
  planHostInterface(entity, m.iface, m.address, observed.links.get(m.iface), add);
  if (observed.managementRoutes && !sameRoutes(m.routes, observed.managementRoutes)) {
    add(entity, `routing table ${m.table} differs`, { op: 'set-routes', table: m.table, routes: m.routes });
  }
}

function routeKey(r: RouteSpec | ObservedRoute): string {
  const [dst, via] = 'to' in r ? [r.to, r.via] : [r.dst, r.gateway];
  return [dst, r.type ?? '', via ?? '', r.type ? '' : (r.dev ?? ''), r.metric ?? ''].join('|');
}

function sameRoutes(want: RouteSpec[], have: ObservedRoute[]): boolean {
  // A route via a link that is down is gone from the kernel: the table then differs, and is rewritten.
  const a = want.map(routeKey).sort().join('\n');
  const b = have.map(routeKey).sort().join('\n');
  return a === b;
}

function planUplink(u: DesiredUplink, observed: Observed, add: Add): void {
  const entity = `uplink ${u.iface}`;
  if (!planHostInterface(entity, u.iface, u.address, observed.links.get(u.iface), add)) return;
  if (u.gateway && observed.defaultVia !== undefined && observed.defaultVia !== u.gateway) {
    add(entity, `default route via ${observed.defaultVia || '(none)'}`, {
      op: 'set-default-route',
      via: u.gateway,
    });
  }
  const htb = observed.htb.get(u.iface);
  if (htb) {
    const drift = htbDrift(u.htb, htb);
    if (drift.length) {
      const wanted = new Set(['1:1', ...u.htb.classes.map((c) => c.classid)]);
      const stale = [...htb.classes.keys()].filter((c) => !wanted.has(c));
      add(`${entity} shaping`, drift.join('; '), {
        op: 'set-htb',
        iface: u.iface,
        spec: u.htb,
        stale,
        createRoot: !htb.root,
      });
    }
  }
}

function planSlice(s: DesiredSlice, observed: Observed, add: Add): void {
  const entity = `slice ${s.name} switch ${s.bridge}`;
  const bridge = observed.links.get(s.bridge);
  if (!bridge) {
    add(entity, 'missing', { op: 'add-bridge', name: s.bridge, alias: s.alias });
    if (s.gateway)
      add(entity, `address ${s.gateway} missing`, { op: 'set-addr', name: s.bridge, addr: s.gateway });
  } else {
    if (bridge.kind !== 'bridge')
      add(entity, `${s.bridge} is a ${bridge.kind ?? 'plain'} link, not a bridge`, { op: 'none' });
    if (!bridge.up) add(entity, 'down', { op: 'link-up', name: s.bridge });
    if (s.gateway && (bridge.addrs.length !== 1 || bridge.addrs[0] !== s.gateway)) {
      add(entity, `address is [${bridge.addrs.join(', ')}], wants ${s.gateway}`, {
        op: 'set-addr',
        name: s.bridge,
        addr: s.gateway,
      });
    }
  }
  if (s.vlan)
    planPort(
      `slice ${s.name} VLAN ${s.vlan.id}`,
      s.vlan.iface,
      s.bridge,
      observed.links.get(s.vlan.iface),
      add,
      {
        op: 'add-vlan',
        name: s.vlan.iface,
        parent: s.uplink,
        id: s.vlan.id,
        alias: s.vlan.alias,
      },
    );
  for (const m of s.members) planMember(s, m, observed, add);
}

/** A switch port: created if missing, enslaved to the switch, up. */
function planPort(
  entity: string,
  name: string,
  bridge: string,
  link: LinkInfo | undefined,
  add: Add,
  create: Op,
): boolean {
  if (!link) add(entity, 'missing', create);
  if (!link || link.master !== bridge) {
    add(entity, link ? `not on switch ${bridge}` : `to be joined to ${bridge}`, {
      op: 'set-master',
      name,
      master: bridge,
    });
  }
  if (!link?.up) add(entity, link ? 'down' : 'to be brought up', { op: 'link-up', name });
  return !link;
}

/** A VM: its tap on the switch, and QEMU running on it with the spec of the config. */
function planVm(s: DesiredSlice, m: DesiredMember, vm: VmSpec, observed: Observed, add: Add): void {
  const entity = `slice ${s.name} member ${m.name}`;
  const running = observed.vms.get(vm.name) ?? null;
  const tap = observed.links.get(m.port);
  // QEMU holds the tap it was started on: a tap made again needs the VM started again.
  if (running && (!tap || running.spec !== vm.spec)) {
    add(entity, tap ? 'VM runs an older config' : `tap ${m.port} missing under a running VM`, {
      op: 'stop-vm',
      name: vm.name,
    });
  }
  planPort(entity, m.port, s.bridge, tap, add, { op: 'add-tap', name: m.port, alias: m.alias });
  if (!running || !tap || running.spec !== vm.spec) {
    add(entity, running ? 'VM to be started again' : `VM ${vm.name} not running`, { op: 'start-vm', vm });
  }
}

function planMember(s: DesiredSlice, m: DesiredMember, observed: Observed, add: Add): void {
  if (m.vm) {
    planVm(s, m, m.vm, observed, add);
    return;
  }
  const entity = `slice ${s.name} member ${m.name}`;
  const nsMissing = !observed.namespaces.has(m.netns);
  if (nsMissing) add(entity, `namespace ${m.netns} missing`, { op: 'add-netns', netns: m.netns });
  // A namespace that is gone took its end of the veth with it, and so the port.
  const port = nsMissing ? undefined : observed.links.get(m.port);
  const fresh = planPort(entity, m.port, s.bridge, port, add, {
    op: 'add-veth',
    port: m.port,
    alias: m.alias,
    peerNetns: m.netns,
    peerMac: m.mac,
  });
  const inside = fresh ? undefined : observed.members.get(m.netns);
  if (!fresh && !inside) return; // not looked into this time: its port says all is well
  const eth = inside?.links.get(MEMBER_IFACE);
  if (!fresh && !eth) {
    add(entity, `${MEMBER_IFACE} missing in ${m.netns}`, { op: 'del-link', name: m.port });
    return; // the port's peer is elsewhere: the next round makes the pair again
  }
  if (!eth?.up)
    add(entity, `${MEMBER_IFACE} ${eth ? 'down' : 'to be brought up'}`, {
      op: 'link-up',
      name: MEMBER_IFACE,
      member: m.netns,
    });
  if (!eth?.addrs.includes(m.address)) {
    add(entity, `address ${m.address} ${eth ? 'missing' : 'to be set'}`, {
      op: 'set-addr',
      name: MEMBER_IFACE,
      addr: m.address,
      member: m.netns,
    });
  }
  // Taking a link down deletes the routes through it: the default route comes back with the link.
  const downNow = !eth?.up || !eth.addrs.includes(m.address);
  if (m.gateway && (downNow || inside?.defaultVia !== m.gateway)) {
    add(entity, `default route via ${m.gateway} ${downNow ? 'to be set' : 'missing'}`, {
      op: 'set-default-route',
      via: m.gateway,
      member: m.netns,
    });
  }
}

const ruleKey = (r: RuleSpec) =>
  `${r.pref}|${r.iif ?? ''}|${r.to}|${r.action === 'prohibit' ? 'prohibit' : r.action.table}`;

function planRules(want: RuleSpec[], observed: Observed, add: Add): void {
  if (!observed.rules) return;
  const have = new Map(observed.rules.map((r) => [ruleKey(r), r]));
  const wantKeys = new Set(want.map(ruleKey));
  for (const r of observed.rules) {
    if (!wantKeys.has(ruleKey(r))) add(ruleEntity(r), 'not in the config', { op: 'del-rule', rule: r });
  }
  for (const r of want) if (!have.has(ruleKey(r))) add(ruleEntity(r), 'missing', { op: 'add-rule', rule: r });
}

function ruleEntity(r: RuleSpec): string {
  return r.pref === ISOLATION_PREF
    ? `isolation rule ${r.iif} -> ${r.to}`
    : r.pref === MANAGEMENT_PREF
      ? `management rule -> ${r.to}`
      : `rule ${r.pref}`;
}

/** What the agent made before and the config no longer has. */
function planStale(desired: Desired, observed: Observed, previous: Desired | undefined, add: Add): void {
  const nsPrefix = `${desired.prefix}-${desired.node}-`;
  const members = new Set(desired.slices.flatMap((s) => s.members.map((m) => m.netns)));
  const vms = new Set(desired.slices.flatMap((s) => s.members.flatMap((m) => (m.vm ? [m.vm.name] : []))));
  // Before the taps they run on.
  for (const name of observed.vms.keys()) {
    if (name.startsWith(nsPrefix) && !vms.has(name))
      add(`VM ${name}`, 'not in the config', { op: 'stop-vm', name });
  }
  for (const ns of observed.namespaces) {
    if (ns.startsWith(nsPrefix) && (!members.has(ns) || vms.has(ns)))
      add(`namespace ${ns}`, 'not in the config', { op: 'del-netns', netns: ns });
  }
  const ours = new Set<string>(
    desired.slices.flatMap((s) => [
      s.bridge,
      ...(s.vlan ? [s.vlan.iface] : []),
      ...s.members.map((m) => m.port),
    ]),
  );
  const alias = aliasPrefix(desired.node);
  for (const link of observed.links.values()) {
    if (link.alias?.startsWith(alias) && !ours.has(link.name)) {
      add(`link ${link.name}`, 'not in the config', { op: 'del-link', name: link.name });
    }
  }
  if (!previous) return;
  const uplinks = new Set(desired.uplinks.map((u) => u.iface));
  for (const u of previous.uplinks) {
    const link = observed.links.get(u.iface);
    if (!link) continue;
    const now = desired.uplinks.find((d) => d.iface === u.iface);
    if (!uplinks.has(u.iface) && observed.htb.get(u.iface)?.root)
      add(`uplink ${u.iface} shaping`, 'not in the config', { op: 'del-htb', iface: u.iface });
    if (u.address && u.address !== now?.address && link.addrs.includes(u.address)) {
      add(`uplink ${u.iface}`, `address ${u.address} not in the config`, {
        op: 'del-addr',
        name: u.iface,
        addr: u.address,
      });
    }
    if (u.gateway && !now?.gateway && observed.defaultVia === u.gateway) {
      add(`uplink ${u.iface}`, `default route via ${u.gateway} not in the config`, {
        op: 'del-default-route',
        via: u.gateway,
      });
    }
  }
  const pm = previous.management;
  if (pm && (!desired.management || desired.management.table !== pm.table)) {
    add(`management ${pm.iface}`, `routing table ${pm.table} not in the config`, {
      op: 'flush-table',
      table: pm.table,
    });
  }
  if (
    pm?.address &&
    pm.address !== desired.management?.address &&
    observed.links.get(pm.iface)?.addrs.includes(pm.address)
  ) {
    add(`management ${pm.iface}`, `address ${pm.address} not in the config`, {
      op: 'del-addr',
      name: pm.iface,
      addr: pm.address,
    });
  }
}

/** A desired state with nothing in it: planned against what is there, it removes everything. */
export function emptyDesired(d: Desired): Desired {
  return {
    node: d.node,
    prefix: d.prefix,
    ...(d.netns ? { netns: d.netns } : {}),
    forwarding: false,
    uplinks: [],
    slices: [],
    rules: [],
    monitored: [],
  };
}

/** The entities a config makes, named as plan() names them: what `status` lists. */
export function entityNames(d: Desired): string[] {
  return [
    ...(d.forwarding ? ['node forwarding'] : []),
    ...(d.management ? [`management ${d.management.iface}`] : []),
    ...d.uplinks.flatMap((u) => [`uplink ${u.iface}`, `uplink ${u.iface} shaping`]),
    ...d.slices.flatMap((s) => [
      `slice ${s.name} switch ${s.bridge}`,
      ...(s.vlan ? [`slice ${s.name} VLAN ${s.vlan.id}`] : []),
      ...s.members.map((m) => `slice ${s.name} member ${m.name}`),
    ]),
    ...d.rules.map(ruleEntity),
  ];
}

/** The monitor of a switch port, named after its member. */
export function monitorEntity(d: Desired, port: string): string {
  const m = d.slices.flatMap((s) => s.members).find((x) => x.port === port);
  return m ? `slice ${m.slice} member ${m.name} monitor` : `monitor ${port}`;
}
