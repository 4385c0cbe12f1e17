/**
 * What the node should look like, derived from its config: every namespace, link, address,
 * rule and HTB class with its kernel name. The naming scheme lives here, in one place:
 *
 *   member namespace   <prefix>-<node>-<slice>-<member>   (found by `tacmesh testbed clean`)
 *   slice switch       <prefix>-<slice>                   (a Linux bridge)
 *   switch port        <prefix>v<7 base-36 of hash(slice/member)>: a container's veth, whose
 *                      peer is eth0 inside the member namespace, or a VM's tap
 *   VM (QEMU -name)    <prefix>-<node>-<slice>-<member>, as a namespace would be
 *   VLAN subinterface  <prefix>.<vlan id>
 *
 * Every link the agent makes carries the alias `tacmesh <node> <what>`: that, not the name,
 * is how it tells its own links from others' when it removes what a config no longer has.
 */
import { createHash } from 'node:crypto';
import type { MemberConfig, NodeConfig, SliceConfig } from './config.js';
import { subnet, VM_DEFAULTS } from './config.js';
import { type HtbSpec, htbSpec } from './isolation.js';
import { type VmSpec, vmSpec } from './vm.js';

/** Rule priorities the agent owns in the node namespace: any other rule there is left alone. */
export const ISOLATION_PREF = 7600;
export const MANAGEMENT_PREF = 7700;
export const MEMBER_IFACE = 'eth0';

export interface DesiredMember {
  slice: string;
  name: string;
  kind: 'container' | 'vm';
  /** The member's namespace (containers); a VM has none, and runs under this name. */
  netns: string;
  /** The switch port in the node namespace: a veth whose peer is MEMBER_IFACE in `netns`, or a VM's tap. */
  port: string;
  alias: string;
  /**
   * A fixed, locally administered MAC for the member's eth0 (from its names): a member made
   * again after a repair answers at the same MAC, so its neighbours' ARP entries stay right.
   */
  mac: string;
  address: string;
  /** The member's default gateway (the slice's address on its switch), if the slice is routed. */
  gateway?: string;
  /** kind vm: the QEMU VM to run on the tap. */
  vm?: VmSpec;
}

/** A switch port flowmon watches, and what is behind it (the records say so). */
export interface MonitoredPort {
  port: string;
  kind: 'container' | 'vm';
}

export interface DesiredSlice {
  name: string;
  bridge: string;
  alias: string;
  /** The node's address on the switch (routed slices). */
  gateway?: string;
  uplink: string;
  /** The uplink's VLAN subinterface bridged into the switch (layer-2 slices). */
  vlan?: { id: number; iface: string; alias: string };
  members: DesiredMember[];
  monitoring: boolean;
  /** The source subnets HTB classifies into this slice's class. */
  subnets: string[];
}

export interface DesiredUplink {
  iface: string;
  address?: string;
  gateway?: string;
  htb: HtbSpec;
}

/** `ip rule` in the node namespace, as the agent writes and reads it. */
export interface RuleSpec {
  pref: number;
  iif?: string;
  to: string;
  action: 'prohibit' | { table: number };
}

export interface RouteSpec {
  /** `default`, or a CIDR. */
  to: string;
  via?: string;
  dev?: string;
  type?: 'unreachable';
  metric?: number;
  table: number;
}

export interface DesiredManagement {
  iface: string;
  address?: string;
  table: number;
  routes: RouteSpec[];
}

export interface Desired {
  node: string;
  prefix: string;
  /** The node's own namespace (undefined: the agent's). */
  netns?: string;
  forwarding: boolean;
  uplinks: DesiredUplink[];
  slices: DesiredSlice[];
  management?: DesiredManagement;
  rules: RuleSpec[];
  /** Switch ports flowmon watches. */
  monitored: MonitoredPort[];
}

/** The start of the alias of every link the agent makes for this node. */
export function aliasPrefix(node: string): string {
  return `tacmesh ${node} `;
}

export function bridgeName(prefix: string, slice: string): string {
  return `${prefix}-${slice}`;
}

export function portName(prefix: string, slice: string, member: string): string {
  const h = createHash('sha256').update(`${slice}/${member}`).digest().readUInt32LE(0) % 36 ** 7;
  return `${prefix}v${h.toString(36).padStart(7, '0')}`;
}

export function memberMac(node: string, slice: string, member: string): string {
  const h = createHash('sha256').update(`${node}/${slice}/${member}`).digest();
  return ['02', ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

export function memberNetns(config: Pick<NodeConfig, 'prefix' | 'node'>, slice: string, member: string) {
  return `${config.prefix}-${config.node}-${slice}-${member}`;
}

/** Every namespace name the agent may make for this node starts with this. */
export function namespacePrefix(config: Pick<NodeConfig, 'prefix' | 'node'>): string {
  return `${config.prefix}-${config.node}-`;
}

const ip = (cidr: string) => cidr.split('/')[0] ?? cidr;

function desiredMember(config: NodeConfig, slice: SliceConfig, m: MemberConfig): DesiredMember {
  const netns = memberNetns(config, slice.name, m.name);
  const port = portName(config.prefix, slice.name, m.name);
  const mac = memberMac(config.node, slice.name, m.name);
  const gateway = slice.gateway ? ip(slice.gateway) : undefined;
  const vm = m.vm ?? VM_DEFAULTS;
  return {
    slice: slice.name,
    name: m.name,
    kind: m.kind,
    netns,
    port,
    alias: `${aliasPrefix(config.node)}${slice.name}/${m.name}`,
    mac,
    address: m.address,
    ...(gateway ? { gateway } : {}),
    ...(m.kind === 'vm'
      ? {
          vm: vmSpec({
            name: netns,
            tap: port,
            mac,
            address: m.address,
            ...(gateway ? { gateway } : {}),
            ...vm,
          }),
        }
      : {}),
  };
}

function desiredSlice(config: NodeConfig, s: SliceConfig): DesiredSlice {
  const subnets = s.gateway ? [subnet(s.gateway)] : [...new Set(s.members.map((m) => subnet(m.address)))];
  return {
    name: s.name,
    bridge: bridgeName(config.prefix, s.name),
    alias: `${aliasPrefix(config.node)}${s.name}`,
    ...(s.gateway ? { gateway: s.gateway } : {}),
    uplink: s.uplink,
    ...(s.vlan !== undefined
      ? {
          vlan: {
            id: s.vlan,
            iface: `${config.prefix}.${s.vlan}`,
            alias: `${aliasPrefix(config.node)}${s.name} vlan`,
          },
        }
      : {}),
    members: s.members.map((m) => desiredMember(config, s, m)),
    monitoring: s.monitoring,
    subnets,
  };
}

/**
 * Routed slices may not reach each other through the node, nor the control plane: one
 * `prohibit` rule per (slice switch, other slice's subnet or tower/management subnet).
 */
function isolationRules(slices: DesiredSlice[], controlPlane: string[]): RuleSpec[] {
  const rules: RuleSpec[] = [];
  for (const s of slices.filter((x) => x.gateway)) {
    const others = slices.filter((o) => o !== s).flatMap((o) => o.subnets);
    for (const to of [...others, ...controlPlane]) {
      rules.push({ pref: ISOLATION_PREF, iif: s.bridge, to, action: 'prohibit' });
    }
  }
  return rules;
}

/**
 * Control traffic to the tower goes by a table of its own that holds only the management
 * interface's routes and, below them, `unreachable`: when the management link is down the
 * packets are refused, never sent out of an uplink by the main table.
 */
function desiredManagement(m: NonNullable<NodeConfig['management']>): DesiredManagement {
  const routes: RouteSpec[] = [];
  if (m.address) routes.push({ to: subnet(m.address), dev: m.interface, table: m.table });
  if (m.gateway) routes.push({ to: 'default', via: m.gateway, dev: m.interface, table: m.table });
  routes.push({ to: 'default', type: 'unreachable', metric: 65535, table: m.table });
  return { iface: m.interface, ...(m.address ? { address: m.address } : {}), table: m.table, routes };
}

export function desiredState(config: NodeConfig): Desired {
  const slices = config.slices.map((s) => desiredSlice(config, s));
  const management = config.management ? desiredManagement(config.management) : undefined;
  const controlPlane = config.management
    ? [
        ...config.management.tower.map(subnet),
        ...(config.management.address ? [subnet(config.management.address)] : []),
      ]
    : [];
  const rules = isolationRules(slices, controlPlane);
  if (config.management) {
    for (const to of config.management.tower) {
      rules.push({ pref: MANAGEMENT_PREF, to: subnet(to), action: { table: config.management.table } });
    }
  }
  return {
    node: config.node,
    prefix: config.prefix,
    ...(config.netns ? { netns: config.netns } : {}),
    forwarding: slices.some((s) => s.gateway),
    uplinks: config.uplinks.map((u) => ({
      iface: u.interface,
      ...(u.address ? { address: u.address } : {}),
      ...(u.gateway ? { gateway: u.gateway } : {}),
      htb: htbSpec(u, config.slices, slices),
    })),
    slices,
    ...(management ? { management } : {}),
    rules,
    monitored: slices
      .filter((s) => s.monitoring)
      .flatMap((s) => s.members.map((m) => ({ port: m.port, kind: m.kind }))),
  };
}
