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
