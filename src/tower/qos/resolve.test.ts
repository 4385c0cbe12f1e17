import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QosPolicySpec } from './model.js';
import { nodePolicy } from './resolve.js';

const spec = QosPolicySpec.parse({
  classes: [
    { name: 'c2', priority: 0, guaranteedBps: 2e6, dscp: 46 },
    { name: 'video', priority: 2, guaranteedBps: 1e6, dscp: 34 },
  ],
  rules: [
    { name: 'everywhere', class: 'c2', protocol: 17, dstPorts: [5000, 5010] },
    { name: 'only-n2', class: 'c2', srcPrefixes: ['10.77.183.0/24'], scope: { node: 'n2', iface: 'eth1' } },
    { name: 'maps', class: 'video', httpHosts: ['maps.local'], protocol: 6, dstPorts: [80, 80] },
    { name: 'unseen', class: 'video', httpHosts: ['nobody.local'] },
  ],
  links: [
    { node: 'n1', iface: 'eth0', rateBps: 10e6 },
    { node: 'n2', iface: 'eth1', rateBps: 5e6 },
    { node: 'n2', iface: 'mesh-n3', rateBps: 'auto' },
  ],
});
const seen = (host: string) => (host === 'maps.local' ? ['10.77.184.7', '10.77.184.8'] : []);
const unmeasured = () => undefined;

test("a node's share: its links with the loop's caps, rules in its scope, HTTP hosts as the servers the monitor saw", () => {
  const limits = new Map([['n1', new Map([['eth0', new Map([['video', 1e6]])]])]]);
  const n1 = nodePolicy(spec, 7, 'n1', limits, seen, unmeasured);
  assert.equal(n1.version, 7);
  assert.deepEqual(n1.links, [
    { iface: 'eth0', rateBps: 10e6, limits: [{ class: 'video', ceilingBps: 1e6 }] },
  ]);
  assert.deepEqual(
    n1.rules?.map((r) => r.name),
    ['everywhere', 'maps'],
  );
  const maps = n1.rules?.find((r) => r.name === 'maps');
  assert.deepEqual(maps?.dstPrefixes, ['10.77.184.7', '10.77.184.8']);
  assert.deepEqual([maps?.dstPortMin, maps?.dstPortMax, maps?.matchDscp], [80, 80, -1]);
  // a host not seen yet would match everything without a destination: left out
  assert.ok(!n1.rules?.some((r) => r.name === 'unseen'));

  const n2 = nodePolicy(spec, 7, 'n2', limits, seen, unmeasured);
  assert.deepEqual(
    n2.rules?.map((r) => [r.name, r.iface]),
    [
      ['everywhere', ''],
      ['only-n2', 'eth1'],
      ['maps', ''],
    ],
  );
  assert.deepEqual(n2.links?.[0]?.limits, []);
  // an auto link waits for its first mesh report, then is built at the radio's maximum rate
  assert.deepEqual(
    n2.links?.map((l) => l.iface),
    ['eth1'],
  );
  const measured = (node: string, iface: string) => (node === 'n2' && iface === 'mesh-n3' ? 20e6 : undefined);
  assert.deepEqual(nodePolicy(spec, 8, 'n2', limits, seen, measured).links?.[1], {
    iface: 'mesh-n3',
    rateBps: 20e6,
    limits: [],
  });
  // a node with no link gets no link: QoS off there
  assert.deepEqual(nodePolicy(spec, 7, 'n3', limits, seen, unmeasured).links, []);
});
