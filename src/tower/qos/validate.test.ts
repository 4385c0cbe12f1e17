import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validatePolicy } from './validate.js';

const classes = [
  { name: 'c2', priority: 0, guaranteedBps: 2_000_000, dscp: 46 },
  { name: 'voice', priority: 1, guaranteedBps: 1_000_000, ceilingBps: 2_000_000, dscp: 46 },
  { name: 'bulk', priority: 7, guaranteedBps: 1_000_000, dscp: 8 },
];
const links = [{ node: 'n1', iface: 'eth0', rateBps: 10_000_000 }];
const errorsOf = (p: unknown) => {
  const v = validatePolicy(p);
  return v.ok ? [] : v.errors;
};

test('a sound policy passes, with defaults filled in', () => {
  const v = validatePolicy({
    classes,
    links,
    rules: [
      { name: 'a', class: 'c2', dstPrefixes: ['10.77.181.0/24'], protocol: 17, dstPorts: [5000, 5010] },
      // overlaps a, same class: harmless
      { name: 'b', class: 'c2', dstPrefixes: ['10.77.181.7'], protocol: 17, dstPorts: [5005, 5005] },
      // same addresses, other ports: no overlap
      { name: 'c', class: 'bulk', dstPrefixes: ['10.77.181.0/24'], protocol: 17, dstPorts: [6000, 6010] },
      { name: 'd', class: 'voice', httpHosts: ['voice.example'], dstPorts: [80, 80], protocol: 6 },
    ],
  });
  assert.ok(v.ok, JSON.stringify(v));
  assert.equal(v.policy.classes[0]?.ceilingBps, 0);
  assert.equal(v.policy.auto.enabled, false);
});

test('each problem is named: unknown class, overlap, guarantees above the link, bad prefix, duplicates', () => {
  assert.deepEqual(errorsOf({ classes, links, rules: [{ name: 'x', class: 'video' }] }), [
    'rule "x": unknown class "video"',
  ]);
  assert.deepEqual(
    errorsOf({
      classes,
      links,
      rules: [
        { name: 'net', class: 'bulk', dstPrefixes: ['10.77.0.0/16'] },
        { name: 'host', class: 'c2', dstPrefixes: ['10.77.181.7/32'], protocol: 17 },
      ],
    }),
    [
      'rules "net" and "host" overlap: some traffic matches both, and they send it to different classes ("bulk" and "c2")',
    ],
  );
  assert.deepEqual(errorsOf({ classes, links: [{ node: 'n1', iface: 'eth0', rateBps: 3_000_000 }] }), [
    "link n1/eth0: the classes' guarantees add up to 4 Mbit/s, above the link's rate of 3 Mbit/s",
  ]);
  // a measured link's rate is not known yet: nothing to hold the guarantees against
  assert.deepEqual(errorsOf({ classes, links: [{ node: 'n1', iface: 'mesh-n2', rateBps: 'auto' }] }), []);
  assert.match(
    errorsOf({ classes, links: [{ node: 'n1', iface: 'mesh-n2', rateBps: 'measured' }] }).join(),
    /^links\.0\.rateBps: /,
  );
  assert.deepEqual(
    errorsOf({ classes, links, rules: [{ name: 'x', class: 'c2', srcPrefixes: ['10.77.1.300/24'] }] }),
    ['rule "x": "10.77.1.300/24" is not an address or prefix'],
  );
  assert.deepEqual(errorsOf({ classes: [...classes, classes[0]], links }), ['class "c2" is defined twice']);
  assert.deepEqual(
    errorsOf({ classes: [{ name: 'v', priority: 1, guaranteedBps: 3e6, ceilingBps: 2e6, dscp: 0 }], links }),
    ['class "v": guaranteed 3 Mbit/s is above its ceiling 2 Mbit/s'],
  );
  assert.deepEqual(errorsOf({ classes, links, rules: [{ name: 'x', class: 'c2', dstPorts: [90, 80] }] }), [
    'rule "x": destination ports 90-80 run backwards',
  ]);
  assert.deepEqual(errorsOf({ classes: [{ name: 'c2', priority: 9, guaranteedBps: 1, dscp: 0 }] }), [
    'classes.0.priority: Too big: expected number to be <=7',
  ]);
});

test('rules scoped to different nodes, or with different protocols, never overlap', () => {
  const rules = [
    { name: 'a', class: 'c2', scope: { node: 'n1' } },
    { name: 'b', class: 'bulk', scope: { node: 'n2' } },
    { name: 'c', class: 'voice', protocol: 6, scope: { node: 'n3' } },
    { name: 'd', class: 'bulk', protocol: 17, scope: { node: 'n3' } },
  ];
  assert.deepEqual(errorsOf({ classes, links, rules }), []);
});
