import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IngestBatch, LinkRow, RouteReportRow } from '../model.js';
import { DuckStore } from '../store/duckdb.js';
import { meshEnds, pairLinks } from './mesh.js';
import { linkSeries, meshEvents } from './mesh-history.js';
import { newestRoutes } from './mesh-paths.js';

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
  routes: [],
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

test("route reports and link reports over time: the newest table of each node, events, a link's time series", async () => {
  const store = await DuckStore.open(':memory:', { retentionDays: 7, rollupRetentionDays: 90 });
  const owner: Record<string, string> = { '10.77.200.1': 'n1', '10.77.200.2': 'n2', '10.77.200.18': 'n3' };
  const nodeOf = (a: string) => owner[a] ?? (a.startsWith('10.77.2') ? 'n2' : null);
  try {
    // On a bucket's edge, so the reports 1 s and 1.5 s in share the series' 2 s bucket.
    const t0 = Math.floor((Date.now() - 20_000) / 2000) * 2000;
    const routes = (seq: number, timeMs: number, via: string): RouteReportRow => ({
      node: 'n1',
      seq,
      timeMs,
      source: 'babel',
      routes: [
        { prefix: '10.77.11.0/24', via: '', iface: '', metric: 0, sinceMs: t0 },
        { prefix: '10.77.21.0/24', via, iface: 'mesh-x', metric: 256, sinceMs: timeMs },
        { prefix: '10.77.22.0/24', via, iface: 'mesh-x', metric: 256, sinceMs: timeMs },
      ],
    });
    const first = { ...batch('n1', []), firstSeq: 1, lastSeq: 1, routes: [routes(1, t0, '10.77.200.2')] };
    assert.equal(await store.append(first), 1);
    assert.equal(await store.append(first), 0, 'a resent route report is stored once');
    // The n1–n2 link goes down 5 s in; n1 then reaches n2's slices through n3.
    const ends = (seq: number, timeMs: number, state: LinkRow['state']) => [
      link('n1', seq, '10.77.200.1', '10.77.200.2', {
        timeMs,
        state,
        rttMeanMs: state === 'down' ? null : 4,
      }),
    ];
    await store.append({
      ...batch('n1', [...ends(2, t0 + 1000, 'up'), ...ends(3, t0 + 2000, 'up')]),
      routes: [],
    });
    await store.append({
      ...batch('n2', [
        link('n2', 1, '10.77.200.2', '10.77.200.1', { timeMs: t0 + 1500, rttMeanMs: 6, loadTxBps: 5000 }),
      ]),
      routes: [],
    });
    await store.append({ ...batch('n1', ends(4, t0 + 5000, 'down')), routes: [] });
    await store.append({
      ...batch('n1', []),
      firstSeq: 5,
      lastSeq: 5,
      routes: [routes(5, t0 + 6000, '10.77.200.18')],
    });

    const newest = await newestRoutes(store.reader);
    assert.deepEqual(
      newest.get('n1')?.routes.map((r) => `${r.prefix} ${r.via}`),
      ['10.77.11.0/24 ', '10.77.21.0/24 10.77.200.18', '10.77.22.0/24 10.77.200.18'],
      'the newest report only',
    );

    const w = { fromMs: t0 - 1000, toMs: Date.now() };
    const events = await meshEvents(store.reader, w, 100, nodeOf);
    assert.deepEqual(
      events.map((e) => e.kind),
      ['route-changed', 'relayed', 'link-down'],
      'newest first; both slices of n2 in one route change',
    );
    const [changed, relayed, down] = events;
    assert.deepEqual(changed, {
      kind: 'route-changed',
      timeMs: t0 + 6000,
      node: 'n1',
      to: 'n2',
      prefixes: ['10.77.21.0/24', '10.77.22.0/24'],
      before: 'n2',
      after: 'n3',
    });
    assert.equal(relayed?.kind === 'relayed' && relayed.after, 'n3', 'n2 reached through n3');
    assert.deepEqual(down?.kind === 'link-down' && [down.node, down.peer, down.timeMs], [
      'n1',
      'n2',
      t0 + 5000,
    ]);
    assert.deepEqual(
      (await meshEvents(store.reader, { fromMs: t0 + 5500, toMs: Date.now() }, 100, nodeOf)).map(
        (e) => e.kind,
      ),
      ['route-changed', 'relayed'],
      'a window after the cut: its change of state is not in it',
    );

    const series = await linkSeries(store.reader, 'n1', 'n2', w, 2000, nodeOf);
    assert.ok(series, 'the n1–n2 link has a series');
    assert.equal(series.stepMs, 2000);
    const p = (t: number) => series.points.find((x) => x.t === Math.floor(t / 2000) * 2000);
    const both = p(t0 + 1000);
    assert.equal(both?.rttMs, (4 + 6) / 2, 'both ends in the bucket: the mean RTT');
    assert.deepEqual(both?.loadBps, { ab: 1000, ba: 5000 }, "each way from the sender's counters");
    assert.equal(p(t0 + 5000)?.state, 'down');
    assert.equal(await linkSeries(store.reader, 'n1', 'n9', w, 2000, nodeOf), undefined, 'no such link');
  } finally {
    store.close();
  }
});
