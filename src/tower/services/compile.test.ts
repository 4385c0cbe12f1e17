/**
 * QoS by service, the compile step and the intent's verdict: pure logic, no kernel (the
 * testbed test runs the same path on real nodes: src/testbed/testbed.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTables, tracePath } from '../api/mesh-paths.js';
import { QosPolicySpec } from '../qos/model.js';
import { nodePolicy } from '../qos/resolve.js';
import { checkWithServices, compileServices, withServices } from './compile.js';
import { intentOf } from './intent.js';
import { ServiceRegistry } from './registry.js';

const policy = QosPolicySpec.parse({
  classes: [
    { name: 'flash', priority: 0, guaranteedBps: 1_000_000, dscp: 46 },
    { name: 'routine', priority: 7, guaranteedBps: 1_000_000, dscp: 0 },
  ],
  rules: [{ name: 'bulk', class: 'routine', protocol: 17 }],
  links: [{ node: 'n1', iface: 'mesh-n2', rateBps: 20_000_000 }],
});

type Instance = { node: string; address: string; port: number; protocol: 'udp' };
const c2 = (extra: Instance[] = [], over: object = {}) =>
  new ServiceRegistry([
    {
      name: 'c2',
      precedence: 'flash',
      guaranteeBps: 2_000_000,
      instances: [
        { node: 'n1', address: '10.77.11.20', port: 0, protocol: 'udp' },
        { node: 'n2', address: '10.77.21.10', port: 5302, protocol: 'udp' },
        ...extra,
      ],
      ...over,
    },
  ]).services;

// The ring's link addresses: n1–n2 .1/.2, n1–n3 .5/.6, n2–n3 .9/.10.
const NODE_OF: Record<string, string> = {
  '10.77.200.1': 'n1',
  '10.77.200.2': 'n2',
  '10.77.200.5': 'n1',
  '10.77.200.6': 'n3',
  '10.77.200.9': 'n2',
  '10.77.200.10': 'n3',
};
const nodeOf = (via: string) => NODE_OF[via] ?? null;
const route = (prefix: string, via: string, iface: string) => ({
  prefix,
  via,
  iface,
  metric: 96,
  sinceMs: 5,
});
const own = (prefix: string) => ({ prefix, via: '', iface: 'ops', metric: 0, sinceMs: 0 });

/** Direct n1–n2 routes, or (cut) both ways through n3. */
function tables(cut: boolean) {
  const n1to2 = cut
    ? route('10.77.21.0/24', '10.77.200.6', 'mesh-n3')
    : route('10.77.21.0/24', '10.77.200.2', 'mesh-n2');
  const n2to1 = cut
    ? route('10.77.11.0/24', '10.77.200.10', 'mesh-n3')
    : route('10.77.11.0/24', '10.77.200.1', 'mesh-n1');
  return parseTables(
    new Map([
      ['n1', { routes: [own('10.77.11.0/24'), n1to2] }],
      ['n2', { routes: [own('10.77.21.0/24'), n2to1] }],
      [
        'n3',
        {
          routes: [
            own('10.77.31.0/24'),
            route('10.77.11.0/24', '10.77.200.5', 'mesh-n1'),
            route('10.77.21.0/24', '10.77.200.9', 'mesh-n2'),
          ],
        },
      ],
    ]),
  );
}

const compile = (cut: boolean, services = c2()) => {
  const t = tables(cut);
  return compileServices(services, policy, (from, to, address) =>
    tracePath(from, to, `${address}/32`, t, nodeOf),
  );
};
const where = (rules: { name: string; scope?: { node?: string; iface?: string } | undefined }[]) =>
  rules.map((r) => `${r.scope?.node}/${r.scope?.iface} ${r.name}`).sort();

test('a flash intent compiles to rules on each egress of both directions, the unnamed links added as auto', () => {
  const c = compile(false);
  assert.deepEqual(where(c.rules), [
    'n1/mesh-n2 svc:c2:10.77.11.20>10.77.21.10:5302',
    'n2/mesh-n1 svc:c2:10.77.21.10:5302>10.77.11.20',
  ]);
  const forward = c.rules.find((r) => r.scope?.node === 'n1');
  assert.deepEqual(
    {
      cls: forward?.class,
      src: forward?.srcPrefixes,
      dst: forward?.dstPrefixes,
      proto: forward?.protocol,
      ports: forward?.dstPorts,
    },
    { cls: 'flash', src: ['10.77.11.20/32'], dst: ['10.77.21.10/32'], proto: 17, ports: [5302, 5302] },
  );
  assert.deepEqual(
    c.links,
    [{ node: 'n2', iface: 'mesh-n1', rateBps: 'auto' }],
    "n1's typed link is the operator's",
  );
  assert.deepEqual(c.guarantees, { flash: 2_000_000 });
  assert.deepEqual(c.problems, []);
  // The nodes' policy: the services' rules first, the class's guarantee raised, the operator's kept.
  const merged = withServices(policy, c);
  assert.deepEqual(
    merged.rules.map((r) => r.name),
    ['svc:c2:10.77.11.20>10.77.21.10:5302', 'svc:c2:10.77.21.10:5302>10.77.11.20', 'bulk'],
  );
  assert.equal(merged.classes.find((x) => x.name === 'flash')?.guaranteedBps, 2_000_000);
  assert.equal(merged.classes.find((x) => x.name === 'routine')?.guaranteedBps, 1_000_000);
  assert.deepEqual(checkWithServices(policy, c), []);
});

test('after a cut the path runs through the relay: it gets the rules, and the cut link loses them', () => {
  const c = compile(true);
  assert.deepEqual(where(c.rules), [
    'n1/mesh-n3 svc:c2:10.77.11.20>10.77.21.10:5302',
    'n2/mesh-n3 svc:c2:10.77.21.10:5302>10.77.11.20',
    'n3/mesh-n1 svc:c2:10.77.21.10:5302>10.77.11.20',
    'n3/mesh-n2 svc:c2:10.77.11.20>10.77.21.10:5302',
  ]);
  assert.deepEqual(
    c.flows.map((f) => `${f.from}>${f.to} ${f.hops.join(',')} ${f.status}`),
    ['10.77.11.20>10.77.21.10 n1,n3,n2 ok', '10.77.21.10>10.77.11.20 n2,n3,n1 ok'],
  );
  // What n3 is sent: its two rules, each on its own link, and both links to build the classes on.
  const n3 = nodePolicy(
    withServices(policy, c),
    7,
    'n3',
    new Map(),
    () => [],
    () => 20_000_000,
  );
  assert.deepEqual(
    (n3.rules ?? []).map((r) => `${r.iface} ${r.class} ${r.name}`),
    [
      'mesh-n2 flash svc:c2:10.77.11.20>10.77.21.10:5302',
      'mesh-n1 flash svc:c2:10.77.21.10:5302>10.77.11.20',
      ' routine bulk',
    ],
  );
  assert.deepEqual((n3.links ?? []).map((l) => l.iface).sort(), ['mesh-n1', 'mesh-n2']);
});

test("guarantees crossing one link add up; above a typed link's rate the set is refused, naming the link", () => {
  const two = c2([{ node: 'n1', address: '10.77.11.21', port: 0, protocol: 'udp' }]);
  const c = compile(false, two);
  assert.deepEqual(c.linkGuarantees, { 'n1/mesh-n2/flash': 4_000_000, 'n2/mesh-n1/flash': 4_000_000 });
  assert.deepEqual(c.guarantees, { flash: 4_000_000 });
  const big = c2([{ node: 'n1', address: '10.77.11.21', port: 0, protocol: 'udp' }], {
    guaranteeBps: 10_000_000,
  });
  assert.deepEqual(checkWithServices(policy, compile(false, big)), [
    "link n1/mesh-n2: the classes' guarantees add up to 21 Mbit/s, above the link's rate of 20 Mbit/s",
  ]);
});

test('a guarantee whose class the policy lacks compiles to nothing, with the reason; a missing route is a flow status', () => {
  const s = c2([], { precedence: 'immediate' });
  const c = compile(false, s);
  assert.deepEqual(c.rules, []);
  assert.deepEqual(c.problems, [
    {
      service: 'c2',
      reason:
        'service "c2": its guarantee needs QoS class "immediate" (precedence immediate), which the QoS policy does not define',
    },
  ]);
  const lost = compileServices(c2(), policy, (from, to, address) =>
    tracePath(from, to, `${address}/32`, parseTables(new Map()), nodeOf),
  );
  assert.deepEqual(
    lost.flows.map((f) => f.status),
    ['unreported', 'unreported'],
  );
});

test('the intent holds while each hop carries its guarantee or drops nothing; below it with drops it is violated', () => {
  const service = c2()[0];
  assert.ok(service);
  const compiled = compile(false);
  const state = { compiled, version: 3, sinceMs: 1, refused: [] };
  const verdict = (bps: number, drops: number, windowMs = 10_000, applied = 3) =>
    intentOf(service, null, {
      state,
      applied: () => applied,
      rate: () => ({ bps, drops, windowMs }),
    });
  assert.equal(verdict(1_990_000, 40)?.status, 'holds');
  assert.equal(verdict(300_000, 0)?.status, 'holds', 'asked for less, lost nothing');
  const v = verdict(1_500_000, 12);
  assert.equal(v?.status, 'violated');
  assert.equal(v?.why, 'n1/mesh-n2: 1500000 bit/s of 2000000 guaranteed, 12 packets dropped in 10000 ms');
  assert.equal(verdict(2_000_000, 0, 1000)?.status, 'measuring');
  assert.equal(verdict(2_000_000, 0, 10_000, 2)?.status, 'unenforced');
  assert.equal(v?.worstHop?.rateBps, 1_500_000);
  // A UDP stream's way back carries nothing: the worst hop shown is the busiest, not that one.
  const oneWay = intentOf(service, null, {
    state,
    applied: () => 3,
    rate: (node) => ({ bps: node === 'n1' ? 2_070_000 : 0, drops: 0, windowMs: 10_000 }),
  });
  assert.equal(oneWay?.status, 'holds');
  assert.equal(`${oneWay?.worstHop?.node}/${oneWay?.worstHop?.iface}`, 'n1/mesh-n2');
  assert.deepEqual(
    v?.hops.map((h) => `${h.node}/${h.iface}`),
    ['n1/mesh-n2', 'n2/mesh-n1'],
  );
});
