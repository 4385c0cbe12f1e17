import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pairLinks } from './mesh.js';

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
