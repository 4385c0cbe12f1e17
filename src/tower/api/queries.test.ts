import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fullBatch } from '../../../test/support/ingest-batch.js';
import type { FlowRow } from '../model.js';
import { DuckStore } from '../store/duckdb.js';
import { conversations } from './queries.js';

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
