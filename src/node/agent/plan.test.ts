/** plan() and the HTB helpers without a kernel: desired vs a made-up observed state. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { parseNodeConfig } from './config.js';
import { type Desired, desiredState, ISOLATION_PREF, MEMBER_IFACE } from './desired.js';
import { classMinors, htbDrift, parseHtbClasses, parseRateKbit, parseU32Filters } from './isolation.js';
import type { LinkInfo, Observed } from './observe.js';
import { emptyDesired, type Op, plan } from './plan.js';

const base = {
  node: 'n1',
  prefix: 'tmabcde',
  management: { interface: 'mgmt0', address: '10.77.120.1/24', tower: ['10.77.120.2/32'] },
  uplinks: [{ interface: 'wan0', rateMbit: 20, address: '10.77.110.1/24' }],
  slices: [
    {
      name: 'a',
      uplink: 'wan0',
      gateway: '10.77.101.1/24',
      share: 50,
      members: [{ name: 'a1', address: '10.77.101.10/24' }],
    },
    {
      name: 'b',
      uplink: 'wan0',
      vlan: 100,
      share: 30,
      members: [{ name: 'b1', address: '10.77.102.10/24' }],
    },
  ],
};

const desired = (over: object = {}) => desiredState(parseNodeConfig(stringify({ ...base, ...over })));

function link(name: string, extra: Partial<LinkInfo> = {}): LinkInfo {
  return { name, ifindex: 1, up: true, lowerUp: true, addrs: [], ...extra };
}

/** What the kernel would show once `d` is in place. */
function converged(d: Desired): Observed {
  const links = new Map<string, LinkInfo>();
  const members: Observed['members'] = new Map();
  links.set('mgmt0', link('mgmt0', { addrs: ['10.77.120.1/24'] }));
  links.set('wan0', link('wan0', { addrs: ['10.77.110.1/24'] }));
  for (const s of d.slices) {
    links.set(
      s.bridge,
      link(s.bridge, { kind: 'bridge', addrs: s.gateway ? [s.gateway] : [], alias: s.alias }),
    );
    if (s.vlan)
      links.set(s.vlan.iface, link(s.vlan.iface, { kind: 'vlan', master: s.bridge, alias: s.vlan.alias }));
    for (const m of s.members) {
      links.set(m.port, link(m.port, { kind: 'veth', master: s.bridge, alias: m.alias }));
      members.set(m.netns, {
        links: new Map([[MEMBER_IFACE, link(MEMBER_IFACE, { addrs: [m.address] })]]),
        ...(m.gateway ? { defaultVia: m.gateway } : {}),
      });
    }
  }
  const u = d.uplinks[0]!;
  return {
    namespaces: new Set(d.slices.flatMap((s) => s.members.map((m) => m.netns))),
    vms: new Map(),
    links,
    members,
    rules: d.rules,
    managementRoutes: d.management!.routes.map((r) => ({
      dst: r.to,
      ...(r.via ? { gateway: r.via } : {}),
      ...(r.type ? { type: r.type } : {}),
      ...(r.type ? {} : { dev: r.dev! }),
      ...(r.metric !== undefined ? { metric: r.metric } : {}),
    })),
    htb: new Map([
      [
        u.iface,
        {
          root: true,
          classes: new Map([
            ['1:1', { rateKbit: u.htb.rateKbit, ceilKbit: u.htb.rateKbit }],
            ...u.htb.classes.map((c): [string, { rateKbit: number; ceilKbit: number }] => [c.classid, c]),
          ]),
          filters: new Map(u.htb.classes.filter((c) => c.subnets.length).map((c) => [c.classid, c.subnets])),
        },
      ],
    ]),
    forwarding: true,
    defaultVia: '',
  };
}

const ops = (actions: { op: Op }[]) => actions.map((a) => a.op.op);

test('a converged node plans nothing', () => {
  const d = desired();
  assert.deepEqual(plan({ desired: d, observed: converged(d), previous: d }), []);
});

test('an empty node is built in order: namespace before veth, switch before its ports', () => {
  const d = desired();
  const observed: Observed = {
    namespaces: new Set(),
    vms: new Map(),
    links: new Map([
      ['mgmt0', link('mgmt0')],
      ['wan0', link('wan0')],
    ]),
    members: new Map(),
    rules: [],
    managementRoutes: [],
    htb: new Map([['wan0', { root: false, classes: new Map(), filters: new Map() }]]),
    forwarding: false,
    defaultVia: '',
  };
  const actions = plan({ desired: d, observed });
  const kinds = ops(actions);
  const at = (op: string, what: string) =>
    actions.findIndex((a) => a.op.op === op && JSON.stringify(a.op).includes(what));
  const a1 = d.slices[0]!.members[0]!;
  assert.ok(at('add-netns', a1.netns) < at('add-veth', a1.port));
  assert.ok(at('add-bridge', d.slices[0]!.bridge) < at('set-master', a1.port));
  assert.ok(at('add-vlan', 'tmabcde.100') >= 0, 'the layer-2 slice rides on a VLAN subinterface');
  assert.ok(kinds.includes('set-htb') && kinds.includes('set-forwarding') && kinds.includes('set-routes'));
  const htb = actions.find((a) => a.op.op === 'set-htb')!.op as Extract<Op, { op: 'set-htb' }>;
  assert.equal(htb.createRoot, true);
  assert.equal(kinds.filter((k) => k === 'add-rule').length, d.rules.length);
  // The member comes up with its address and, on the routed slice, its default route.
  const inA1 = actions.filter((a) => 'member' in a.op && a.op.member === a1.netns).map((a) => a.op.op);
  assert.deepEqual(inA1, ['link-up', 'set-addr', 'set-default-route']);
});

test('drift: a deleted switch is made again and its ports joined to it', () => {
  const d = desired();
  const observed = converged(d);
  const s = d.slices[0]!;
  observed.links.delete(s.bridge);
  for (const m of s.members)
    observed.links.set(m.port, { ...observed.links.get(m.port)!, master: undefined as never });
  const actions = plan({ desired: d, observed });
  assert.deepEqual(ops(actions), ['add-bridge', 'set-addr', 'set-master']);
  assert.equal(actions[0]!.entity, `slice a switch ${s.bridge}`);
  assert.equal(actions[0]!.problem, 'missing');
});

test('drift: a member whose eth0 went down comes up with its default route', () => {
  const d = desired();
  const observed = converged(d);
  const a1 = d.slices[0]!.members[0]!;
  const inside = observed.members.get(a1.netns)!;
  inside.links.set(MEMBER_IFACE, { ...inside.links.get(MEMBER_IFACE)!, up: false });
  delete inside.defaultVia;
  assert.deepEqual(ops(plan({ desired: d, observed })), ['link-up', 'set-default-route']);
});

test('drift: a namespace gone means namespace, veth and the inside again', () => {
  const d = desired();
  const observed = converged(d);
  const b1 = d.slices[1]!.members[0]!;
  observed.namespaces.delete(b1.netns);
  observed.members.delete(b1.netns);
  assert.deepEqual(ops(plan({ desired: d, observed })), [
    'add-netns',
    'add-veth',
    'set-master',
    'link-up',
    'link-up',
    'set-addr',
  ]);
});

test("what the agent made and the config dropped is removed; others' links are left alone", () => {
  const before = desired();
  const after = desired({ slices: [base.slices[0]] });
  const observed = converged(before);
  observed.links.set('tmabcdev0a', link('tmabcdev0a', { kind: 'veth' })); // a test's own veth, same prefix
  const actions = plan({ desired: after, observed, previous: before });
  const gone = actions.filter((a) => a.op.op === 'del-link').map((a) => (a.op as { name: string }).name);
  const b = before.slices[1]!;
  assert.deepEqual(gone.sort(), [b.bridge, b.vlan!.iface, b.members[0]!.port].sort());
  assert.ok(actions.some((a) => a.op.op === 'del-netns'));
  assert.ok(
    actions.some(
      (a) =>
        a.op.op === 'del-rule' && (a.op.rule.to === '10.77.102.0/24' || a.op.rule.pref === ISOLATION_PREF),
    ),
  );
  assert.ok(
    actions.some((a) => a.op.op === 'set-htb'),
    'the class of b goes',
  );
});

test('remove: planned against an empty desired state, everything the agent made goes', () => {
  const d = desired();
  const actions = plan({ desired: emptyDesired(d), observed: converged(d), previous: d });
  const kinds = new Set(ops(actions));
  for (const k of ['del-netns', 'del-link', 'del-rule', 'del-htb', 'flush-table', 'del-addr'])
    assert.ok(kinds.has(k as Op['op']), k);
  assert.ok(!kinds.has('add-bridge') && !kinds.has('add-netns'));
});

test('an interface the node does not have is reported, never created', () => {
  const d = desired();
  const observed = converged(d);
  observed.links.delete('wan0');
  const actions = plan({ desired: d, observed });
  assert.deepEqual(
    actions.map((a) => [a.entity, a.op.op]),
    [['uplink wan0', 'none']],
  );
});

test('HTB: rates and filters read back from tc, drift found', () => {
  assert.equal(parseRateKbit('9500Kbit'), 9500);
  assert.equal(parseRateKbit('19Mbit'), 19000);
  assert.equal(parseRateKbit('1.5Gbit'), 1_500_000);
  const classes = parseHtbClasses(
    'class htb 1:1 root rate 19Mbit ceil 19Mbit burst 1600b cburst 1600b \nclass htb 1:2f3 parent 1:1 prio 0 rate 9500Kbit ceil 19Mbit burst 1600b\n',
  );
  assert.deepEqual(classes.get('1:2f3'), { rateKbit: 9500, ceilKbit: 19000 });
  const filters = parseU32Filters(
    JSON.stringify([
      { parent: '1:', pref: 10, kind: 'u32' },
      {
        parent: '1:',
        pref: 10,
        kind: 'u32',
        options: { flowid: '1:2f3', match: { value: 'a4d6500', mask: 'ffffff00', off: 12 } },
      },
    ]),
  );
  assert.deepEqual([...filters], [['1:2f3', ['10.77.101.0/24']]]);
  const spec = desired().uplinks[0]!.htb;
  assert.match(htbDrift(spec, { root: true, classes: new Map(), filters: new Map() }).join(), /missing/);
  assert.deepEqual(htbDrift(spec, { root: false, classes: new Map(), filters: new Map() }), [
    'no HTB root qdisc',
  ]);
});

test("HTB: a slice's class id does not depend on the others", () => {
  const both = classMinors(['a', 'b', 'video']);
  const alone = classMinors(['b']);
  assert.equal(both.get('b'), alone.get('b'));
  assert.equal(new Set(both.values()).size, 3);
});

/** base with slice a's second member a VM. */
const withVm = (vm: object = {}) =>
  desired({
    slices: [
      {
        ...base.slices[0],
        members: [
          { name: 'a1', address: '10.77.101.10/24' },
          {
            name: 'v1',
            kind: 'vm',
            address: '10.77.101.30/24',
            vm: { fetch: ['http://10.77.101.10/'], ...vm },
          },
        ],
      },
      base.slices[1],
    ],
  });

/** converged(d) with the VM members' taps on their switches and their QEMU running its spec. */
function convergedVms(d: Desired): Observed {
  const o = converged(d);
  for (const s of d.slices)
    for (const m of s.members.filter((x) => x.vm)) {
      o.namespaces.delete(m.netns);
      o.members.delete(m.netns);
      o.links.set(m.port, link(m.port, { kind: 'tun', master: s.bridge, alias: m.alias }));
      o.vms.set(m.netns, { pid: 4242, spec: m.vm?.spec ?? '' });
    }
  return o;
}

test('a VM member is a tap on its switch and a QEMU with its spec; converged, nothing to do', () => {
  const d = withVm();
  const vm = d.slices[0]?.members[1];
  assert.equal(vm?.kind, 'vm');
  assert.equal(vm?.vm?.tap, vm?.port, 'QEMU runs on the switch port');
  assert.deepEqual(d.monitored[1], { port: vm?.port, kind: 'vm' }, 'flowmon watches the tap as a VM port');
  assert.deepEqual(plan({ desired: d, observed: convergedVms(d), previous: d }), []);
});

test('a VM whose QEMU is gone is started again on the tap it has', () => {
  const d = withVm();
  const o = convergedVms(d);
  const name = d.slices[0]?.members[1]?.netns ?? '';
  o.vms.set(name, null);
  const actions = plan({ desired: d, observed: o });
  assert.deepEqual(ops(actions), ['start-vm']);
  assert.match(actions[0]?.problem ?? '', /not running/);
});

test('a VM is made in order: tap, on the switch, up, then QEMU; a changed config restarts it', () => {
  const d = withVm();
  const o = convergedVms(d);
  const m = d.slices[0]?.members[1];
  o.links.delete(m?.port ?? '');
  o.vms.delete(m?.netns ?? '');
  assert.deepEqual(ops(plan({ desired: d, observed: o })), ['add-tap', 'set-master', 'link-up', 'start-vm']);
  const bigger = withVm({ memoryMb: 256 });
  assert.notEqual(bigger.slices[0]?.members[1]?.vm?.spec, m?.vm?.spec, 'the spec digests the size');
  assert.deepEqual(ops(plan({ desired: bigger, observed: convergedVms(d) })), ['stop-vm', 'start-vm']);
});

test('a VM the config dropped is stopped before its tap goes; remove stops every VM', () => {
  const d = withVm();
  const o = convergedVms(d);
  const dropped = plan({ desired: desired(), observed: o, previous: d });
  assert.deepEqual(ops(dropped), ['stop-vm', 'del-link']);
  const removed = ops(plan({ desired: emptyDesired(d), observed: o, previous: d }));
  assert.ok(removed.indexOf('stop-vm') < removed.indexOf('del-link'), removed.join(' '));
});

test('a vm section on a container is refused, naming the field', () => {
  assert.throws(
    () =>
      desired({
        slices: [{ ...base.slices[0], members: [{ name: 'a1', address: '10.77.101.10/24', vm: {} }] }],
      }),
    /slices\.0\.members\.0\.vm: member a1 is a container: a vm section needs kind: vm/,
  );
});
