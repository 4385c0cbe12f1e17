import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { fullBatch } from '../../../test/support/ingest-batch.js';
import { withTempDir } from '../../../test/support/temp-dir.js';
import { migrationTo } from './catalog.js';
import { rowOf, table } from './columns.js';
import { DuckStore } from './duckdb.js';
import { FLOWS, MONITOR_STATS, SCHEMA_VERSION } from './tables.js';

const V1_DDL = readFileSync(new URL('../../../test/fixtures/tower-store-v1.sql', import.meta.url), 'utf8');
const OPTIONS = { retentionDays: 7, rollupRetentionDays: 90 };

/** A DuckDB file made by `statements`, closed again. */
async function makeFile(path: string, statements: string[]): Promise<void> {
  const db = await DuckDBInstance.create(path);
  const c = await db.connect();
  try {
    for (const s of statements) await c.run(s);
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

const v1Tables = () =>
  V1_DDL.replace(/^--.*$/gm, '')
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean);

const withDir = (fn: (dir: string) => Promise<void>) => withTempDir('tacmesh-store-', fn);

test('a store from before schema versions opens at the current one and keeps every row', () =>
  withDir(async (dir) => {
    const path = join(dir, 'tower.duckdb');
    const t = Date.now() - 60_000;
    await makeFile(path, [
      ...v1Tables(),
      `INSERT INTO flows VALUES (${t}, 'n1', 1, 'pa', 'egress', 4, '10.77.151.1', '10.77.152.1', 40001, 5201, 6,
         11, 12000, 24, 46, ${t - 900}, 'inter', 'n1', NULL)`, // fullBatch's flow, dst_node NULL
      `INSERT INTO http VALUES (${t}, 'n1', 2, 'pa', 'ingress', 4, '10.77.151.1', '10.77.152.1', 40002, 80, false,
         'GET', '/a', 'srv', 0, '1.1', false, 'inter')`,
      `INSERT INTO monitor_stats VALUES (${t}, 'n1', 3, 3, 4, 5, 6, 7, 8, 9, 10)`,
      `INSERT INTO mesh_links VALUES (${t}, 'n1', 4, 'mesh0', '10.77.200.1', '10.77.200.2', 'up', '[]', ${t - 5000},
         50, 50, 1, 2, 3, NULL, 0, 0, 20000000, 20000000, 'dlep', 1000, 2000, 0.0001)`,
      `INSERT INTO mesh_routes VALUES (${t}, 'n1', 5, 'babel', '10.77.152.0/24', '10.77.200.2', 'mesh0', 96, ${t - 7000}),
         (${t}, 'n1', 5, 'babel', '10.77.153.0/24', '10.77.200.2', 'mesh0', 352, ${t - 6000})`,
      `INSERT INTO nodes VALUES ('n1', '["10.77.151.0/24"]', '[{"name":"a","subnets":["10.77.151.0/24"],"bridge":"br-a"}]',
         48.1, 11.5, 'tacmesh 0.1', ${t - 9000}, ${t}, 'null', '{"l3":true,"version":4}')`,
      `INSERT INTO qos_audit VALUES (${t}, 'alice', 'set', 3, 'added class voice', '{"classes":[]}')`,
    ]);

    const store = await DuckStore.open(path, OPTIONS);
    try {
      assert.equal(store.openedAtVersion, 0, 'a store without a version table is version 0');
      const versions = await store.reader.runAndReadAll(
        'SELECT version FROM schema_version ORDER BY version',
      );
      assert.deepEqual(
        versions.getRowObjectsJS().map((r) => Number(r.version)),
        Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1),
        'every migration ran once, in order',
      );
      const flows = await store.reader.runAndReadAll('SELECT * FROM flows');
      assert.deepEqual(
        flows.getRowObjectsJS().map((r) => rowOf(FLOWS, r)),
        [{ ...fullBatch('n1', 1, t).flows[0], dstNode: null, ifaceKind: null }],
        'the same record as fullBatch makes, but the destination on no node and no interface kind (schema 5)',
      );
      for (const [name, n] of [
        ['http', 1],
        ['monitor_stats', 1],
        ['mesh_links', 1],
        ['mesh_routes', 2],
      ] as const) {
        const r = await store.reader.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM ${name}`);
        assert.equal(r.getRowObjectsJS()[0]?.n, n, `the ${name} rows are kept`);
      }
      assert.deepEqual(await store.loadNodes(), [
        {
          name: 'n1',
          subnets: ['10.77.151.0/24'],
          slices: [{ name: 'a', subnets: ['10.77.151.0/24'], bridge: 'br-a' }],
          lat: 48.1,
          lon: 11.5,
          software: 'tacmesh 0.1',
          firstSeenMs: t - 9000,
          lastSeenMs: t,
          status: null,
          monitor: { l3: true, version: 4 },
        },
      ]);
      assert.equal((await store.loadQosAudit(10))[0]?.summary, 'added class voice');

      assert.deepEqual(store.stored.get('n1')?.ranges, [[1, 5]], 'the old records count as stored');
      assert.equal(await store.append(fullBatch('n1', 1, t)), 0, 'a resend of them is recognised');
      assert.equal(await store.append(fullBatch('n1', 6, t)), 5, 'new records of every kind store');
      const stats = await store.reader.runAndReadAll('SELECT * FROM monitor_stats ORDER BY seq');
      assert.deepEqual(
        stats.getRowObjectsJS().map((r) => rowOf(MONITOR_STATS, r).l7SampledOut),
        [null, 11],
        'the column added by version 2: NULL in the old row, the value in the new one',
      );
    } finally {
      store.close();
    }
    const again = await DuckStore.open(path, OPTIONS);
    again.close();
    assert.equal(again.openedAtVersion, SCHEMA_VERSION, 'a current store is not migrated again');
  }));

test('a store of a newer tower, or whose table differs from its declaration, is refused by name', () =>
  withDir(async (dir) => {
    const newer = join(dir, 'newer.duckdb');
    await makeFile(newer, [
      'CREATE TABLE schema_version (version INTEGER, applied_ms BIGINT)',
      `INSERT INTO schema_version VALUES (${SCHEMA_VERSION + 1}, 0)`,
    ]);
    await assert.rejects(
      DuckStore.open(newer, OPTIONS),
      new RegExp(`schema version ${SCHEMA_VERSION + 1}, newer than this tower's ${SCHEMA_VERSION}`),
    );
    const changed = join(dir, 'changed.duckdb');
    await makeFile(
      changed,
      v1Tables().map((s) => s.replace('tcp_flags UTINYINT, dscp UTINYINT,', 'tcp_flags UTINYINT,')),
    );
    await assert.rejects(
      DuckStore.open(changed, OPTIONS),
      /the store's table flows has the columns \(.*tcp_flags UTINYINT, first_seen_ms.*\), not the declared \(.*tcp_flags UTINYINT, dscp UTINYINT, first_seen_ms/,
    );
  }));

test('a later version creates the tables it adds and adds the columns to older ones', async () => {
  const old = table<{ a: number; b: string | null }>(
    't_old',
    {},
    { a: 'BIGINT', b: { type: 'VARCHAR', nullable: true, since: 3 } },
  );
  const added = table<{ x: number }>('t_new', { since: 3 }, { x: 'DOUBLE' });
  const tables = [old, added] as never[];
  assert.deepEqual(migrationTo(2, tables), [], 'version 2 changes neither');
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    for (const v of [1, 2, 3]) for (const s of migrationTo(v, tables)) await c.run(s);
    const r = await c.runAndReadAll(
      `SELECT table_name || '.' || column_name || ' ' || data_type AS c FROM duckdb_columns()
       WHERE table_name IN ('t_old', 't_new') ORDER BY table_name, column_index`,
    );
    assert.deepEqual(
      r.getRowObjectsJS().map((x) => x.c),
      ['t_new.x DOUBLE', 't_old.a BIGINT', 't_old.b VARCHAR'],
    );
  } finally {
    c.closeSync();
    db.closeSync();
  }
  assert.throws(
    () => table<{ a: number; b: number }>('t_bad', {}, { a: { type: 'BIGINT', since: 2 }, b: 'BIGINT' }),
    /column b \(since 1\) must come after the older ones/,
  );
});
