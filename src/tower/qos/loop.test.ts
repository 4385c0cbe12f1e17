import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClosedLoop } from './loop.js';
import { QosAutoSpec } from './model.js';

const classes = [
  { name: 'c2', priority: 0, guaranteedBps: 2e6, ceilingBps: 0, dscp: 46 },
  { name: 'bulk', priority: 7, guaranteedBps: 1e6, ceilingBps: 0, dscp: 8 },
];
const auto = QosAutoSpec.parse({ enabled: true, congestedAt: 0.9, clearAt: 0.6, holdMs: 2000 });
const sample = (t: number, c2: number, bulk: number) => ({
  timeMs: t,
  rateBps: 10e6,
  linkBps: c2 + bulk,
  classBps: new Map([
    ['c2', c2],
    ['bulk', bulk],
  ]),
});

test('lowers the lower classes after congestion held, restores after their demand left, with hysteresis', () => {
  const loop = new ClosedLoop();
  assert.equal(loop.step('n/e', sample(0, 2e6, 5e6), classes, auto), undefined); // 70 %: not congested
  assert.equal(loop.step('n/e', sample(1000, 2e6, 7.5e6), classes, auto), undefined); // congested, not held yet
  assert.equal(loop.step('n/e', sample(2000, 2e6, 6e6), classes, auto), undefined); // dipped: the hold restarts
  assert.equal(loop.step('n/e', sample(3000, 2e6, 7.5e6), classes, auto), undefined);
  const lower = loop.step('n/e', sample(5000, 2e6, 7.5e6), classes, auto);
  assert.equal(lower?.action, 'auto-lower');
  assert.deepEqual(lower?.action === 'auto-lower' && [...lower.limits], [['bulk', 1e6]]);
  assert.match(lower?.reason ?? '', /"bulk" above guarantee/);
  // capped bulk runs at its cap: stays lowered however long
  for (let t = 6000; t < 20_000; t += 1000)
    assert.equal(loop.step('n/e', sample(t, 2e6, 1e6), classes, auto), undefined);
  // demand between clearAt and the cap: still lowered
  assert.equal(loop.step('n/e', sample(20_000, 2e6, 0.7e6), classes, auto), undefined);
  assert.equal(loop.step('n/e', sample(23_000, 2e6, 0.7e6), classes, auto), undefined);
  // bulk stops: restored once that held
  assert.equal(loop.step('n/e', sample(24_000, 2e6, 0), classes, auto), undefined);
  assert.equal(loop.step('n/e', sample(26_000, 2e6, 0), classes, auto)?.action, 'auto-restore');
  assert.equal(loop.limits('n/e'), undefined);
});

test('a congested link whose lower classes stay within their guarantee is left alone', () => {
  const loop = new ClosedLoop();
  for (let t = 0; t < 10_000; t += 1000)
    assert.equal(loop.step('n/e', sample(t, 9e6, 0.9e6), classes, auto), undefined);
});

test('an auto link: capacity falls, the lower classes are capped; it grows back, the caps are lifted', () => {
  const loop = new ClosedLoop();
  const radio = (t: number, capacityBps: number, bulk: number) => ({
    timeMs: t,
    rateBps: capacityBps,
    linkBps: 0.5e6 + bulk,
    classBps: new Map([
      ['c2', 0.5e6],
      ['bulk', bulk],
    ]),
  });
  // 20 Mbit/s radio, 8.5 Mbit/s carried: 43 %, nothing to do
  for (let t = 0; t < 5000; t += 1000)
    assert.equal(loop.step('n1/mesh-n2', radio(t, 20e6, 8e6), classes, auto), undefined);
  // the radio falls to 3 Mbit/s: the same load is 283 % of it; after the hold, bulk is capped
  assert.equal(loop.step('n1/mesh-n2', radio(5000, 3e6, 8e6), classes, auto), undefined);
  const lower = loop.step('n1/mesh-n2', radio(7000, 3e6, 8e6), classes, auto);
  assert.equal(lower?.action, 'auto-lower');
  assert.deepEqual(lower?.action === 'auto-lower' && [...lower.limits], [['bulk', 1e6]]);
  assert.equal(loop.limits('n1/mesh-n4'), undefined, 'only the link that fell');
  // bulk at its cap: a small recovery (to 4 Mbit/s) keeps the cap
  for (let t = 8000; t < 14_000; t += 1000)
    assert.equal(loop.step('n1/mesh-n2', radio(t, 4e6, 1e6), classes, auto), undefined);
  // back at 20 Mbit/s: what congested 3 Mbit/s is under 60 % of it; lifted once that held
  assert.equal(loop.step('n1/mesh-n2', radio(14_000, 20e6, 1e6), classes, auto), undefined);
  const restore = loop.step('n1/mesh-n2', radio(16_000, 20e6, 1e6), classes, auto);
  assert.equal(restore?.action, 'auto-restore');
  assert.match(restore?.reason ?? '', /capacity is back at 20 Mbit\/s from 3 Mbit\/s/);
});

test('an auto link whose radio fell below its classes: a class above its guarantee is capped though the link is not full, one pressing its cap keeps it; at its maximum a full link is left alone', () => {
  const loop = new ClosedLoop();
  const fallen = (t: number, bulk: number, capacityBps = 4e6) => ({
    timeMs: t,
    rateBps: capacityBps,
    builtAtBps: 20e6,
    linkBps: 0.1e6 + bulk,
    classBps: new Map([
      ['c2', 0.1e6],
      ['bulk', bulk],
    ]),
  });
  // Built at 20 Mbit/s, the radio at 4: bulk's 3 Mbit/s under 2 % loss fills 78 % of it.
  assert.equal(loop.step('n1/mesh-n2', fallen(0, 3e6), classes, auto), undefined);
  const lower = loop.step('n1/mesh-n2', fallen(2000, 3e6), classes, auto);
  assert.equal(lower?.action, 'auto-lower');
  assert.deepEqual(lower?.action === 'auto-lower' && [...lower.limits], [['bulk', 1e6]]);
  assert.match(lower?.reason ?? '', /fallen to 4 Mbit\/s of the 20 Mbit\/s its classes are built at/);
  // Capped, bulk presses its cap: the link far from full, the caps stay.
  for (let t = 3000; t < 12_000; t += 1000)
    assert.equal(loop.step('n1/mesh-n2', fallen(t, 1e6), classes, auto), undefined);
  // Within its guarantee on a fallen radio: nothing to cap.
  const calm = new ClosedLoop();
  for (let t = 0; t < 10_000; t += 1000)
    assert.equal(calm.step('n1/mesh-n2', fallen(t, 0.9e6), classes, auto), undefined);
  // The radio at its maximum, full of bulk: HTB is the bottleneck and serves c2 first.
  const full = new ClosedLoop();
  for (let t = 0; t < 10_000; t += 1000)
    assert.equal(full.step('n1/mesh-n2', fallen(t, 19.5e6, 20e6), classes, auto), undefined);
});
