import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pairLinks } from './mesh.js';
import { meshPaths } from './mesh-paths.js';

const end = (node: string, address: string, neighbour: string, over: object = {}) => ({
  node,
  iface: `mesh-${neighbour}`,
  address,
  neighbour,
  state: 'up' as const,
  why: [],
  probesSent: 50,
  rttMeanMs: 2,
  rttMedianMs: 1.8,
  rttP95Ms: 3,
  jitterMs: 0.1,
  lossOutPct: 0,
  lossInPct: 0,
  capacityBps: 20e6,
  maxCapacityBps: 20e6,
  capacityFrom: 'dlep' as const,
  loadTxBps: 1e6,
  loadRxBps: 2e6,
  timeMs: 1000,
  sinceMs: 10,
  ...over,
});

test('the two ends of a link pair by address; the worse state, loss each way and the lower capacity win', () => {
  const links = pairLinks([
    end('n2', '10.77.200.2', '10.77.200.1', {
      lossOutPct: 4,
      loadTxBps: 3e6,
      capacityBps: 4e6,
      state: 'degraded',
    }),
    end('n1', '10.77.200.1', '10.77.200.2', { lossInPct: 3, rttMeanMs: 4 }),
    end('n1', '10.77.200.17', '10.77.200.18', { state: 'down', rttMeanMs: 2, timeMs: 2000 }),
  ]);
  assert.equal(links.length, 2);
  const n1n2 = links.find((l) => l.b === 'n2');
  const n1n3 = links.find((l) => l.b !== 'n2');
  assert.equal(n1n2?.a, 'n1');
  assert.equal(n1n2?.b, 'n2');
  assert.equal(n1n2?.state, 'degraded');
  assert.deepEqual(
    n1n2?.lossPct,
    { ab: 0, ba: 4 },
    "n2's out-loss is b → a; n1's in-loss of 3 % is the lesser count",
  );
  assert.deepEqual(n1n2?.loadBps, { ab: 1e6, ba: 3e6 });
  assert.equal(n1n2?.capacityBps, 4e6);
  assert.equal(n1n2?.utilization, 3e6 / 4e6);
  assert.equal(n1n2?.rttMs, 3, 'the mean of both ends');
  assert.equal(n1n2?.ends.length, 2);
  assert.equal(n1n3?.b, '10.77.200.18', "an end whose peer does not report names the peer's address");
  assert.equal(n1n3?.state, 'down');
  assert.equal(n1n3?.rttMs, 2, 'only ends that measured count');
});

test("paths follow each node's next hops: direct, through a relay, and why a walk ends short", () => {
  const owner: Record<string, string> = {
    '10.77.200.2': 'n2',
    '10.77.200.5': 'n2',
    '10.77.200.6': 'n3',
    '10.77.200.18': 'n3',
    '10.77.200.17': 'n1',
    '10.77.200.1': 'n1',
  };
  const nodeOf = (a: string) => owner[a] ?? null;
  const r = (prefix: string, via: string, sinceMs = 100) => ({
    prefix,
    via,
    iface: 'mesh-x',
    metric: 256,
    sinceMs,
  });
  const tables = new Map([
    // n1 reaches n2's ops directly, its svc through n3, and has a loop-prone and an odd route.
    [
      'n1',
      {
        node: 'n1',
        routes: [
          r('10.77.11.0/24', ''),
          r('10.77.21.0/24', '10.77.200.2', 500),
          r('10.77.22.0/24', '10.77.200.18', 300),
          r('10.77.0.0/16', '10.77.200.2'),
          r('0.0.0.0/0', ''),
        ],
      },
    ],
    [
      'n2',
      {
        node: 'n2',
        routes: [
          r('10.77.21.0/24', ''),
          r('10.77.22.0/24', ''),
          r('10.77.11.0/24', '10.77.200.1'),
          r('10.77.41.0/24', '10.77.200.6'),
        ],
      },
    ],
    [
      'n3',
      {
        node: 'n3',
        routes: [
          r('10.77.22.0/24', '10.77.200.5', 700),
          r('10.77.41.0/24', '10.77.200.17'),
          r('10.77.11.0/24', '10.77.200.99'),
        ],
      },
    ],
  ]);
  const nodes = [
    { name: 'n1', prefixes: ['10.77.11.0/24'] },
    { name: 'n2', prefixes: ['10.77.21.0/24', '10.77.22.0/24'] },
    { name: 'n3', prefixes: [] },
    { name: 'n4', prefixes: ['10.77.41.0/24', '10.77.42.0/24'] },
  ];
  const paths = meshPaths(nodes, tables, nodeOf);
  const at = (from: string, prefix: string) => paths.find((p) => p.from === from && p.prefix === prefix);
  assert.deepEqual(at('n1', '10.77.21.0/24'), {
    from: 'n1',
    to: 'n2',
    prefix: '10.77.21.0/24',
    hops: ['n1', 'n2'],
    status: 'ok',
    since: 500,
  });
  assert.deepEqual(at('n1', '10.77.22.0/24')?.hops, ['n1', 'n3', 'n2'], 'the other slice through the relay');
  assert.equal(at('n1', '10.77.22.0/24')?.since, 700, "the later of the two hops' since");
  assert.deepEqual(at('n2', '10.77.11.0/24')?.hops, ['n2', 'n1']);
  assert.deepEqual(
    [at('n2', '10.77.41.0/24')?.status, at('n2', '10.77.41.0/24')?.hops],
    ['loop', ['n2', 'n3', 'n1', 'n2']],
    "n1's /16 sends n4's slice back to n2",
  );
  assert.deepEqual(
    [at('n1', '10.77.42.0/24')?.status, at('n1', '10.77.42.0/24')?.hops],
    ['no-route', ['n1', 'n2']],
    'n2 has no route for it',
  );
  assert.deepEqual(
    [at('n3', '10.77.11.0/24')?.status, at('n3', '10.77.11.0/24')?.via],
    ['unknown-hop', '10.77.200.99'],
  );
  assert.equal(at('n3', '10.77.21.0/24')?.status, 'no-route');
  assert.equal(
    paths.some((p) => p.from === 'n4'),
    false,
    'a node with no routes reported starts no path',
  );
  const viaSilent = meshPaths(
    nodes,
    new Map([['n1', { node: 'n1', routes: [r('10.77.41.0/24', '10.77.200.18')] }]]),
    nodeOf,
  );
  assert.deepEqual(
    [
      viaSilent.find((p) => p.prefix === '10.77.41.0/24')?.status,
      viaSilent.find((p) => p.prefix === '10.77.41.0/24')?.hops,
    ],
    ['unreported', ['n1', 'n3']],
  );
});
