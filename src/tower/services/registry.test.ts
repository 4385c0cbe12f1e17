/** The registry's merge rules and the histogram's percentiles: pure logic, no tower. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bucketBounds, bucketOf, type Histogram, quantile } from './histogram.js';
import { ServiceRegistry } from './registry.js';

const decl = (name: string, address: string, port: number, precedence = 'flash') => ({
  name,
  precedence,
  slice: 'ops',
  member: 'm1',
  address,
  port,
  protocol: 'http',
});

test('a node declaring a service the tower has at another precedence is refused, naming both', () => {
  const r = new ServiceRegistry([{ name: 'c2', precedence: 'flash', instances: [] }]);
  const refused = r.setNode('n2', [
    decl('c2', '10.77.1.10', 80, 'routine'),
    decl('chat', '10.77.1.11', 5222),
  ]);
  assert.deepEqual(
    refused.map((x) => x.reason),
    ['service "c2": node n2 declares precedence routine, tower declares flash'],
  );
  assert.deepEqual(
    r.services.map((s) => s.name),
    ['c2', 'chat'],
  );
  assert.deepEqual(
    r.refusals.map((x) => x.source),
    ['node n2'],
  );
});

test('instances of one service from several nodes merge; an address:port taken by another service is refused', () => {
  const r = new ServiceRegistry();
  r.setNode('n1', [decl('c2', '10.77.1.10', 80)]);
  r.setNode('n4', [decl('c2', '10.77.4.10', 80), decl('logs', '10.77.1.10', 80)]);
  const c2 = r.get('c2');
  assert.deepEqual(
    c2?.instances.map((i) => `${i.node} ${i.address}`),
    ['n1 10.77.1.10', 'n4 10.77.4.10'],
  );
  assert.deepEqual(c2?.declaredBy, ['node n1', 'node n4']);
  assert.match(r.refusals[0]?.reason ?? '', /10\.77\.1\.10:80\/http is already an instance of service "c2"/);
  // the tower's set that would contradict a node's is refused whole, with the node named
  assert.match(
    r.setTower([{ name: 'c2', precedence: 'routine' }]) ?? '',
    /declares precedence .* \(declared by node n1; change or remove one of the two\)/,
  );
  assert.equal(r.get('c2')?.precedence, 'flash');
});

test('a malformed node declaration is refused by field, the rest kept', () => {
  const r = new ServiceRegistry();
  const refused = r.setNode('n1', [decl('c2', '10.77.1.300', 80), decl('ok', '10.77.1.2', 1)]);
  assert.match(refused[0]?.reason ?? '', /^instances\.0\.address: /);
  assert.deepEqual(
    r.services.map((s) => s.name),
    ['ok'],
  );
});

test('percentiles from log buckets are within a bucket of the truth, and histograms merge', () => {
  const values = Array.from({ length: 1000 }, (_, i) => 1 + i / 10); // 1..100.9 ms, uniform
  const a: Histogram = new Map();
  const b: Histogram = new Map();
  values.forEach((v, i) => {
    const h = i % 2 ? a : b;
    h.set(bucketOf(v), (h.get(bucketOf(v)) ?? 0) + 1);
  });
  for (const [k, n] of b) a.set(k, (a.get(k) ?? 0) + n);
  for (const q of [0.5, 0.95, 0.99]) {
    const truth = values[Math.ceil(q * values.length) - 1] as number;
    const got = quantile(a, q) as number;
    const [lo, hi] = bucketBounds(bucketOf(truth));
    assert.ok(got >= lo && got <= hi, `q${q}: ${got} in the bucket of ${truth} [${lo}, ${hi})`);
  }
  assert.equal(quantile(new Map(), 0.5), null);
});
