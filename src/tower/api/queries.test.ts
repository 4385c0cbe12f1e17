import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fullBatch } from '../../../test/support/ingest-batch.js';
import type { FlowRow } from '../model.js';
import { DuckStore } from '../store/duckdb.js';
import { conversations, throughput } from './queries.js';

test('GET /flows: each conversation per DSCP it carried, with its TCP flags, on-link traffic left out', async () => {
  const now = Date.now();
  const base = fullBatch('n1', 1, now - 5000);
  const voice = base.flows[0] as FlowRow; // 10.77.151.1:40001 → 10.77.152.1:5201, EF
  const rows: FlowRow[] = [
    { ...voice, seq: 1, bytes: 1000, packets: 10, tcpFlags: 0x12 },
    { ...voice, seq: 2, direction: 'ingress', iface: 'pb', bytes: 1000, packets: 10, tcpFlags: 0x12 },
    // above the policer's rate: re-marked to best effort
    { ...voice, seq: 3, dscp: 0, bytes: 300, packets: 3, tcpFlags: 0x18, timeMs: now - 4000 },
    { ...voice, seq: 4, srcPort: 40002, dscp: 0, bytes: 50, packets: 1, tcpFlags: 0x04 },
    { ...voice, seq: 5, src: 'fe80::1', dst: 'ff02::1:6', ipVersion: 6, dscp: 48 },
  ];
  const store = await DuckStore.open(':memory:', { retentionDays: 7, rollupRetentionDays: 90 });
  try {
    await store.append({ ...base, firstSeq: 1, lastSeq: 5, flows: rows, http: [], stats: [], links: [] });
    const w = { fromMs: now - 60_000, toMs: now };
    const all = await conversations(store.reader, w);
    assert.deepEqual(
      all.map((c) => [c.srcPort, c.dscp, c.bytes, c.packets, c.records, c.tcpFlags]),
      [
        [40001, 46, 1000, 10, 2, 0x12],
        [40001, 0, 300, 3, 1, 0x18],
        [40002, 0, 50, 1, 1, 0x04],
      ],
      'egress bytes per conversation and DSCP, every sighting a record, the flags ORed',
    );
    assert.deepEqual(all[0], {
      src: voice.src,
      dst: voice.dst,
      srcPort: 40001,
      dstPort: voice.dstPort,
      protocol: voice.protocol,
      locality: voice.locality,
      dscp: 46,
      tcpFlags: 0x12,
      bytes: 1000,
      packets: 10,
      records: 2,
      firstSeen: voice.firstSeenMs,
      lastSeen: now - 5000,
    });
    const ef = await conversations(store.reader, w, { dscp: 46 });
    assert.deepEqual(
      ef.map((c) => [c.srcPort, c.dscp]),
      [[40001, 46]],
    );
  } finally {
    store.close();
  }
});

test('GET /throughput: steady traffic exported each second draws steady in 2 s buckets, however the exports fall', async () => {
  const step = 2000;
  const start = Math.floor(Date.now() / 60_000) * 60_000 - 120_000;
  const base = fullBatch('n1', 1, start);
  const flow = base.flows[0] as FlowRow;
  // 125 kB each second (1 Mbit/s), exported with a jitter of up to ±300 ms: the old 2 s
  // buckets counted 1, 2 or 3 of them (0.5 to 1.5 Mbit/s).
  const jitter = [
    0, 290, -280, 250, -300, 10, 300, -250, 120, -90, 280, -290, 0, 200, -200, 100, -100, 0, 0, 0,
  ];
  const rows: FlowRow[] = jitter.map((j, i) => ({
    ...flow,
    seq: i + 1,
    direction: 'egress',
    timeMs: start + (i + 1) * 1000 + j,
    bytes: 125_000,
  }));
  const store = await DuckStore.open(':memory:', { retentionDays: 7, rollupRetentionDays: 90 });
  try {
    await store.append({
      ...base,
      firstSeq: 1,
      lastSeq: rows.length,
      flows: rows,
      http: [],
      stats: [],
      links: [],
    });
    const t = await throughput(store.reader, { fromMs: start, toMs: start + 30_000 }, step, () => 1000);
    const points = t.series.n1 ?? [];
    // The buckets wholly inside the run (the first and the last are partly before or after it).
    const inner = points.filter(([at]) => at >= start + 2000 && at + step <= start + 18_000);
    assert.equal(inner.length, 8, 'a bucket every 2 s through the run');
    for (const [at, bps] of inner)
      assert.ok(
        Math.abs(bps - 1_000_000) <= 300_000,
        `${new Date(at).toISOString()}: ${bps} bit/s, not about 1 Mbit/s`,
      );
    const total = points.reduce((s, [, bps]) => s + (bps * step) / 8000, 0);
    assert.ok(Math.abs(total - 125_000 * rows.length) < 1, `every byte counted once (${total})`);
  } finally {
    store.close();
  }
});
