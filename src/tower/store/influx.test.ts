import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startInfluxd } from '../../../test/support/influxd.js';
import { fullBatch } from '../../../test/support/ingest-batch.js';
import type { SomeRecordTable } from './columns.js';
import { InfluxSink } from './influx.js';
import { RECORD_TABLES } from './tables.js';

interface Series {
  results: { series?: { values: string[][] }[] }[];
}
const keys = (r: unknown) => ((r as Series).results[0]?.series?.[0]?.values ?? []).map((v) => v[0] ?? '');

test('InfluxDB gets every column of every record table: the tags as tags, the rest as fields', async () => {
  const influxd = await startInfluxd();
  const sink = new InfluxSink({ url: influxd.url, database: 'tacmesh' });
  try {
    await sink.start();
    const batch = fullBatch('n1', 1, Date.now());
    sink.write(batch);
    await sink.flush();
    assert.equal(sink.counters.writeErrors, 0, sink.counters.lastError);
    assert.equal(sink.counters.pointsWritten, 6, 'one point per stored row (the route report has two)');
    for (const t of Object.values(RECORD_TABLES) as SomeRecordTable[]) {
      const m = t.measurement;
      const tags = keys(await sink.query(`SHOW TAG KEYS FROM "${m}"`));
      const fields = keys(await sink.query(`SHOW FIELD KEYS FROM "${m}"`));
      const want = (tag: boolean) =>
        t.columns
          .filter((c) => c.tag === tag && !c.time)
          .map((c) => c.name)
          .sort();
      assert.deepEqual(tags.sort(), want(true), `${m}: tags`);
      assert.deepEqual(fields.sort(), want(false), `${m}: fields`);
    }
    const dscp = await sink.query('SELECT dscp, tcp_flags FROM flow');
    assert.deepEqual((dscp as Series).results[0]?.series?.[0]?.values[0]?.slice(1), [46, 0x18]);
  } finally {
    await sink.stop();
    await influxd.stop();
  }
});
