/**
 * Carries out one planned Op with iproute2 (`ip`, `tc`) or /proc. Every Op is written so
 * that running it twice is harmless (replace, not add, wherever the kernel allows it).
 */
import { writeFileSync } from 'node:fs';
import { run } from '../../shared/exec.js';
import { inNetns } from '../../shared/netns.js';
import { MEMBER_IFACE, type RouteSpec, type RuleSpec } from './desired.js';
import { htbCommands } from './isolation.js';
import type { Op } from './plan.js';
import { startVm, stopVm } from './vm.js';

export class Linux {
  /** @param netns the node's namespace (undefined: the agent's own) */
  constructor(readonly netns: string | undefined) {}

  private ip(member: string | undefined, ...args: string[]) {
    const ns = member ?? this.netns;
    return run('ip', [...(ns ? ['-n', ns] : []), ...args]);
  }

  private tc(...args: string[]) {
    return run('tc', [...(this.netns ? ['-n', this.netns] : []), ...args]);
  }

  /** What the Op does, in words, for events and `apply` output. */
  static describe(op: Op): string {
    switch (op.op) {
      case 'add-netns':
        return `create namespace ${op.netns}`;
      case 'del-netns':
        return `delete namespace ${op.netns}`;
      case 'add-bridge':
        return `create bridge ${op.name}`;
      case 'add-vlan':
        return `create VLAN ${op.id} on ${op.parent} as ${op.name}`;
      case 'add-veth':
        return `create veth ${op.port} <-> ${op.peerNetns}/${MEMBER_IFACE}`;
      case 'add-tap':
        return `create tap ${op.name}`;
      case 'start-vm':
        return `start VM ${op.vm.name} on ${op.vm.tap} (${op.vm.memoryMb} MiB, ${op.vm.cpus} CPU)`;
      case 'stop-vm':
        return `stop VM ${op.name}`;
      case 'del-link':
        return `delete link ${op.name}`;
      case 'link-up':
        return `bring ${op.member ? `${op.member}/` : ''}${op.name} up`;
      case 'set-master':
        return `join ${op.name} to ${op.master}`;
      case 'set-addr':
        return `set address ${op.addr} on ${op.member ? `${op.member}/` : ''}${op.name}`;
      case 'del-addr':
        return `remove address ${op.addr} from ${op.name}`;
      case 'set-default-route':
        return `set default route via ${op.via}${op.member ? ` in ${op.member}` : ''}`;
      case 'del-default-route':
        return `remove default route via ${op.via}`;
      case 'set-htb':
        return `set HTB on ${op.iface}: ${op.spec.classes.map((c) => `${c.owner} ${c.rateKbit}/${c.ceilKbit} kbit`).join(', ')}`;
      case 'del-htb':
        return `remove HTB from ${op.iface}`;
      case 'add-rule':
        return `add rule ${ruleArgs(op.rule).join(' ')}`;
      case 'del-rule':
        return `delete rule ${ruleArgs(op.rule).join(' ')}`;
      case 'set-routes':
        return `rewrite routing table ${op.table} (${op.routes.length} routes)`;
      case 'flush-table':
        return `flush routing table ${op.table}`;
      case 'set-forwarding':
        return `turn IPv4 forwarding ${op.on ? 'on' : 'off'}`;
      case 'none':
        return 'nothing the agent can do';
    }
  }

  async execute(op: Op): Promise<void> {
    switch (op.op) {
      case 'add-netns':
        await run('ip', ['netns', 'add', op.netns]);
        await this.ip(op.netns, 'link', 'set', 'lo', 'up');
        return;
      case 'del-netns':
        await run('ip', ['netns', 'del', op.netns]);
        return;
      case 'add-bridge':
        await this.ip(undefined, 'link', 'add', op.name, 'type', 'bridge');
        await this.ip(undefined, 'link', 'set', op.name, 'alias', op.alias, 'up');
        return;
      case 'add-vlan':
        await this.ip(
          undefined,
          'link',
          'add',
          'link',
          op.parent,
          'name',
          op.name,
          'type',
          'vlan',
          'id',
          String(op.id),
        );
        return;
      case 'add-veth':
        // A namespace just deleted takes a moment to take its veth along: clear a leftover port.
        await this.ip(undefined, 'link', 'del', op.port).catch(() => undefined);
        await this.ip(
          undefined,
          'link',
          'add',
          op.port,
          'type',
          'veth',
          'peer',
          'name',
          MEMBER_IFACE,
          'address',
          op.peerMac,
          'netns',
          op.peerNetns,
        );
        await this.ip(undefined, 'link', 'set', op.port, 'alias', op.alias);
        return;
      case 'add-tap':
        await this.ip(undefined, 'tuntap', 'add', 'dev', op.name, 'mode', 'tap');
        await this.ip(undefined, 'link', 'set', op.name, 'alias', op.alias);
        return;
      case 'start-vm':
        await startVm(op.vm, this.netns);
        return;
      case 'stop-vm':
        await stopVm(op.name);
        return;
      case 'del-link':
        // A veth goes with its namespace, a moment after the namespace is deleted.
        await this.ip(undefined, 'link', 'del', op.name).catch((err: Error) => {
          if (!/Cannot find device/.test(err.message)) throw err;
        });
        return;
      case 'link-up':
        await this.ip(op.member, 'link', 'set', op.name, 'up');
        return;
      case 'set-master':
        await this.ip(undefined, 'link', 'set', op.name, 'master', op.master);
        return;
      case 'set-addr':
        // Only addresses of the family being set, and never the IPv6 link-local one: routing
        // daemons (babeld) speak over it.
        if (op.addr.includes(':'))
          await this.ip(op.member, '-6', 'addr', 'flush', 'dev', op.name, 'scope', 'global');
        else await this.ip(op.member, '-4', 'addr', 'flush', 'dev', op.name);
        await this.ip(op.member, 'addr', 'add', op.addr, 'dev', op.name);
        return;
      case 'del-addr':
        await this.ip(undefined, 'addr', 'del', op.addr, 'dev', op.name);
        return;
      case 'set-default-route':
        await this.ip(op.member, 'route', 'replace', 'default', 'via', op.via);
        return;
      case 'del-default-route':
        await this.ip(undefined, 'route', 'del', 'default', 'via', op.via);
        return;
      case 'set-htb':
        await this.setHtb(op);
        return;
      case 'del-htb':
        await this.tc('qdisc', 'del', 'dev', op.iface, 'root');
        return;
      case 'add-rule':
        await this.ip(undefined, 'rule', 'add', ...ruleArgs(op.rule));
        return;
      case 'del-rule':
        await this.ip(undefined, 'rule', 'del', ...ruleArgs(op.rule));
        return;
      case 'set-routes':
        await this.flushTable(op.table);
        for (const r of op.routes) await this.ip(undefined, 'route', 'replace', ...routeArgs(r));
        return;
      case 'flush-table':
        await this.flushTable(op.table);
        return;
      case 'set-forwarding':
        inNetns(this.netns, () => writeFileSync('/proc/sys/net/ipv4/ip_forward', op.on ? '1' : '0'));
        return;
      case 'none':
        throw new Error('not the agent to repair');
    }
  }

  private async setHtb(op: Extract<Op, { op: 'set-htb' }>): Promise<void> {
    for (const args of htbCommands(op.iface, op.spec, op.createRoot)) {
      // Deleting filters that are not there yet is fine; anything else is an error.
      const optional = args[0] === 'filter' && args[1] === 'del';
      await this.tc(...args).catch((err: Error) => {
        if (!optional) throw err;
      });
    }
    for (const classid of op.stale) {
      await this.tc('class', 'del', 'dev', op.iface, 'classid', classid).catch(() => undefined);
    }
  }

  private async flushTable(table: number): Promise<void> {
    await this.ip(undefined, 'route', 'flush', 'table', String(table)).catch(() => undefined);
  }
}

export function ruleArgs(r: RuleSpec): string[] {
  return [
    'pref',
    String(r.pref),
    ...(r.iif ? ['iif', r.iif] : []),
    'to',
    r.to,
    ...(r.action === 'prohibit' ? ['prohibit'] : ['lookup', String(r.action.table)]),
  ];
}

function routeArgs(r: RouteSpec): string[] {
  return [
    ...(r.type ? [r.type] : []),
    r.to,
    ...(r.via ? ['via', r.via] : []),
    ...(r.dev ? ['dev', r.dev] : []),
    ...(r.metric !== undefined ? ['metric', String(r.metric)] : []),
    'table',
    String(r.table),
  ];
}
