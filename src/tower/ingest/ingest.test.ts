import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flow } from '../../../test/support/tower-process.js';
import type { RecordBatch__Output } from '../../proto/index.js';
import { SeqRanges } from '../store/seq-ranges.js';
import { BadBatch, decodeBatch } from './decode.js';
import { LocalityMap } from './locality.js';
import { contains, firstOverlap, parseCidr } from './prefix.js';

test('seq ranges: merge, gaps, membership', () => {
  const r = new SeqRanges();
  for (const s of [1, 2, 3, 7, 8, 5]) r.addOne(s);
  assert.deepEqual(r.ranges, [
    [1, 3],
    [5, 5],
    [7, 8],
  ]);
  r.addOne(4);
  r.addOne(6);
  assert.deepEqual(r.ranges, [[1, 8]]);
  assert.equal(r.contiguousHigh, 8);
  assert.ok(r.has(5) && !r.has(9) && !r.has(0));
  r.add(20, 30);
  r.add(9, 19);
  assert.deepEqual(r.ranges, [[1, 30]]);
});

test('seq ranges: a batch of sparse seqs in any order; past the cap the oldest gaps close', () => {
  const r = new SeqRanges(3);
  assert.equal(r.addSeqs([9, 1, 5, 3, 7]), 2, 'five ranges, two gaps closed');
  assert.deepEqual(r.ranges, [
    [1, 5],
    [7, 7],
    [9, 9],
  ]);
  assert.equal(r.closedGaps, 2);
  assert.ok(r.has(2) && r.has(4), 'closed gaps count as held');
  r.addSeqs([6, 8, 10]);
  assert.deepEqual(r.ranges, [[1, 10]]);
  r.add(20, 30);
  r.addSeqs([15]);
  assert.deepEqual(r.ranges, [
    [1, 10],
    [15, 15],
    [20, 30],
  ]);
  assert.equal(r.contiguousHigh, 10);
});

test('prefixes: containment and the first overlap with the other nodes', () => {
  const c = parseCidr;
  assert.ok(contains(c('10.77.0.0/16'), c('10.77.5.0/24')));
  assert.ok(!contains(c('10.77.5.0/24'), c('10.77.0.0/16')));
  assert.ok(!contains(c('10.77.0.0/16'), c('fd00::/64')));
  const theirs = Array.from({ length: 5000 }, (_, i) => ({
    cidr: c(`10.${i >> 8}.${i & 255}.0/24`),
    node: 'n',
  }));
  assert.equal(firstOverlap([c('10.200.0.0/16'), c('fd00::/8')], theirs), undefined);
  assert.equal(firstOverlap([c('10.19.0.0/16')], theirs)?.[1].cidr.text, '10.19.0.0/24');
  assert.equal(firstOverlap([c('10.3.7.128/25')], theirs)?.[1].cidr.text, '10.3.7.0/24');
  assert.equal(c('10.77.1.9/24').bytes.join('.'), '10.77.1.0', 'host bits zeroed');
});

test('locality: longest prefix, node positions, site places, intra/inter/external', () => {
  const m = new LocalityMap();
  m.setNode('alpha', ['10.77.11.0/24', '10.77.12.0/24'], { lat: 37.5, lon: 127 });
  m.setNode('bravo', ['10.77.21.0/24'], { lat: 37.3, lon: 127.2 });
  m.addSite('10.77.99.0/24', { position: { lat: 37.8, lon: 126.7 }, label: 'HQ' });
  m.addSite('10.77.11.128/25', { node: 'bravo' }); // a longer prefix wins
  assert.equal(m.classify('10.77.11.1', '10.77.12.9').locality, 'intra');
  assert.equal(m.classify('10.77.11.1', '10.77.21.9').locality, 'inter');
  assert.equal(m.classify('10.77.11.1', '10.77.99.10').locality, 'external');
  assert.equal(m.classify('10.77.11.1', '10.77.11.200').locality, 'inter');
  assert.deepEqual(m.endpoint('10.77.99.10'), {
    node: null,
    position: { lat: 37.8, lon: 126.7 },
    label: 'HQ',
  });
  assert.deepEqual(m.endpoint('10.77.21.5').position, { lat: 37.3, lon: 127.2 });
  // A new hello replaces what the node registered before.
  m.setNode('bravo', ['10.77.22.0/24'], null);
  assert.equal(m.endpoint('10.77.21.5').node, null);
  assert.equal(m.endpoint('::ffff:10.77.22.3').node, 'bravo', 'IPv4-mapped IPv6 is the IPv4 address');
  assert.throws(() => m.addSite('10.77.300.0/24', {}), /not a CIDR prefix/);
});

function batch(flows: Partial<RecordBatch__Output['flows'][number]>[]): RecordBatch__Output {
  return {
    firstSeq: 1,
    lastSeq: flows.length,
    http: [],
    stats: [],
    links: [],
    routes: [],
    flows: flows.map((f, i) => ({
      ...flow(i + 1, '10.77.11.1', '10.77.99.10', 2),
      srcPort: 1000,
      firstSeenMs: 1,
      ...f,
    })),
  };
}

test('a batch is decoded and classified, and a bad one is refused with the reason', () => {
  const m = new LocalityMap();
  m.setNode('alpha', ['10.77.11.0/24'], null);
  const ok = decodeBatch('alpha', batch([{}]), m);
  assert.equal(ok.flows[0]?.locality, 'external');
  assert.equal(ok.flows[0]?.srcNode, 'alpha');
  assert.equal(ok.flows[0]?.direction, 'egress');
  assert.throws(
    () => decodeBatch('alpha', batch([{ src: 'not-an-ip' }]), m),
    (e: Error) => e instanceof BadBatch && /flow source "not-an-ip"/.test(e.message),
  );
  assert.throws(
    () => decodeBatch('alpha', batch([{ iface: 'x'.repeat(5000) }]), m),
    /interface name is 5000 characters/,
  );
  assert.throws(() => decodeBatch('alpha', { ...batch([{}]), firstSeq: 9, lastSeq: 2 }, m), /reversed/);
  assert.equal(ok.flows[0]?.ifaceKind, 'container', "the interface's kind, as the node said");
  assert.equal(decodeBatch('alpha', batch([{ ifaceKind: '' }]), m).flows[0]?.ifaceKind, null, 'older nodes');
  assert.throws(
    () => decodeBatch('alpha', batch([{ ifaceKind: 'toaster' }]), m),
    /interface kind "toaster" is not container, vm, host/,
  );
  const route = { prefix: '10.77.21.0/24', via: '10.77.200.2', iface: 'mesh-n2', metric: 256, sinceMs: 5 };
  const withRoutes = (source: string, routes: (typeof route)[]) => ({
    ...batch([{}]),
    lastSeq: 2,
    routes: [{ seq: 2, timeMs: 10, source, routes }],
  });
  const decoded = decodeBatch(
    'alpha',
    withRoutes('babel', [route, { ...route, prefix: '10.77.11.0/24', via: '' }]),
    m,
  );
  assert.deepEqual(
    decoded.routes[0]?.routes.map((r) => r.via),
    ['10.77.200.2', ''],
    "a next hop, and the node's own prefix",
  );
  assert.throws(() => decodeBatch('alpha', withRoutes('ospf', [route]), m), /route source "ospf"/);
  assert.throws(
    () => decodeBatch('alpha', withRoutes('kernel', [{ ...route, prefix: '10.77.300.0/24' }]), m),
    (e: Error) =>
      e instanceof BadBatch && /route destination: "10.77.300.0\/24" is not a CIDR/.test(e.message),
  );
  assert.throws(
    () => decodeBatch('alpha', withRoutes('kernel', [{ ...route, via: 'n2' }]), m),
    /route next hop "n2" is not an IP address/,
  );
});
