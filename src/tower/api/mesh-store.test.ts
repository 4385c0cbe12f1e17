import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IngestBatch, LinkRow } from '../model.js';
import { DuckStore } from '../store/duckdb.js';
import { meshEnds, pairLinks } from './mesh.js';

const link = (
  node: string,
  seq: number,
  address: string,
  neighbour: string,
  over: Partial<LinkRow> = {},
): LinkRow => ({
  node,
  seq,
  timeMs: Date.now(),
  iface: 'mesh-x',
  address,
  neighbour,
  state: 'up',
  why: [],
  sinceMs: Date.now() - 5000,
  probesSent: 50,
  probesAnswered: 49,
  rttMinMs: 1,
  rttMeanMs: 2,
  rttMedianMs: 1.8,
  rttP95Ms: 3,
  jitterMs: null,
  lossForwardPct: 2,
  lossBackwardPct: 0,
  capacityBps: 20e6,
  maxCapacityBps: 20e6,
  capacityFrom: 'dlep',
  loadTxBps: 1000,
  loadRxBps: 2000,
  utilization: 0.0001,
  ...over,
});

const batch = (node: string, links: LinkRow[]): IngestBatch => ({
  node,
  firstSeq: links[0]?.seq ?? 1,
  lastSeq: links.at(-1)?.seq ?? 1,
  flows: [],
  http: [],
  stats: [],
  links,
});

test('link reports are stored once, and the newest of each end makes the mesh', async () => {
  const store = await DuckStore.open(':memory:', { retentionDays: 7, rollupRetentionDays: 90 });
  try {
    const old = link('n1', 1, '10.77.200.1', '10.77.200.2', {
      timeMs: Date.now() - 2000,
      state: 'down',
      why: ['no probe answered'],
    });
    const first = batch('n1', [old, link('n1', 2, '10.77.200.1', '10.77.200.2')]);
    assert.equal(await store.append(first), 2);
    assert.equal(await store.append(first), 0, 'a resend is stored once');
    await store.append(batch('n2', [link('n2', 1, '10.77.200.2', '10.77.200.1', { lossForwardPct: 7 })]));
    const ends = await meshEnds(store.reader);
    assert.equal(ends.length, 2, 'the newest report of each end');
    assert.ok(ends.every((e) => e.state === 'up'));
    assert.equal(ends.find((e) => e.node === 'n1')?.jitterMs, null, 'NULL stays "not measured"');
    const [l] = pairLinks(ends);
    assert.equal(`${l?.a}-${l?.b}`, 'n1-n2');
    assert.deepEqual(l?.lossPct, { ab: 2, ba: 7 });
  } finally {
    store.close();
  }
});
