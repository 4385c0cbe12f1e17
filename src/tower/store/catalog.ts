/**
 * The store's catalog: the declared tables (tables.ts) brought into the DuckDB file and kept
 * there. At open, a store is migrated up to SCHEMA_VERSION one version at a time (each in
 * one transaction, recorded in schema_version) and every table checked column by column
 * against its declaration; afterwards, flows are rolled up into one-minute buckets and old
 * rows removed after their retention.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Column, ColumnType, Table } from './columns.js';
import { FLOWS, FLOWS_1M, ROLLUP_STATE, SCHEMA_VERSION, TABLES } from './tables.js';

const MINUTE = 60_000;
const DAY = 86_400_000;

const physical = (type: ColumnType) => (type === 'JSON' ? 'VARCHAR' : type);
const ddl = (c: Column<never>) => `${c.name} ${physical(c.type)}${c.primaryKey ? ' PRIMARY KEY' : ''}`;

/**
 * The statements that take a store from version v - 1 to v: the tables added in v created
 * with their columns of v, the columns added in v added to the older tables. Version 1 is
 * the towers' from before versions, which created every table with IF NOT EXISTS at each
 * start: a store of theirs is at version 0 here, and version 1 changes nothing in it.
 */
export function migrationTo(v: number, tables: readonly Table<never>[] = TABLES): string[] {
  const statements: string[] = [];
  for (const t of tables) {
    if (t.since === v) {
      const columns = t.columns.filter((c) => c.since <= v).map(ddl);
      statements.push(`CREATE TABLE IF NOT EXISTS ${t.name} (${columns.join(', ')})`);
    } else if (t.since < v) {
      for (const c of t.columns.filter((x) => x.since === v))
        statements.push(`ALTER TABLE ${t.name} ADD COLUMN IF NOT EXISTS ${c.name} ${physical(c.type)}`);
    }
  }
  return statements;
}

async function versionOf(db: DuckDBConnection): Promise<number> {
  await db.run('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_ms BIGINT)');
  const r = await db.runAndReadAll('SELECT coalesce(max(version), 0)::INTEGER AS v FROM schema_version');
  return Number(r.getRowObjectsJS()[0]?.v ?? 0);
}

/** Migrates the store to SCHEMA_VERSION and checks its tables; returns the version it had. */
export async function openCatalog(db: DuckDBConnection, nowMs = Date.now()): Promise<number> {
  const from = await versionOf(db);
  if (from > SCHEMA_VERSION)
    throw new Error(
      `the store is at schema version ${from}, newer than this tower's ${SCHEMA_VERSION}: run a newer tower`,
    );
  for (let v = from + 1; v <= SCHEMA_VERSION; v++) {
    await db.run('BEGIN TRANSACTION');
    try {
      for (const statement of migrationTo(v)) await db.run(statement);
      await db.run('INSERT INTO schema_version VALUES ($1, $2)', [v, nowMs]);
      await db.run('COMMIT');
    } catch (err) {
      await db.run('ROLLBACK');
      throw new Error(`migrating the store to schema version ${v} failed: ${(err as Error).message}`);
    }
  }
  await checkColumns(db);
  return from;
}

/** Every declared table has exactly its declared columns, in order: the appenders are positional. */
async function checkColumns(db: DuckDBConnection): Promise<void> {
  const r = await db.runAndReadAll(
    `SELECT table_name, column_name, data_type FROM duckdb_columns()
     WHERE database_name = current_database() AND schema_name = 'main' ORDER BY table_name, column_index`,
  );
  const have = new Map<string, string[]>();
  for (const row of r.getRowObjectsJS()) {
    const list = have.get(String(row.table_name)) ?? [];
    list.push(`${row.column_name} ${row.data_type}`);
    have.set(String(row.table_name), list);
  }
  for (const t of TABLES) {
    const want = t.columns.map((c) => `${c.name} ${physical(c.type)}`);
    const got = have.get(t.name) ?? [];
    if (want.join(', ') !== got.join(', '))
      throw new Error(
        `the store's table ${t.name} has the columns (${got.join(', ')}), not the declared (${want.join(', ')})`,
      );
  }
}

export interface Retention {
  /** Raw rows (records, agent events) are kept this long in the live tables. */
  retentionDays: number;
  /** One-minute roll-ups are kept this long. */
  rollupRetentionDays: number;
  /**
   * Whole days of raw rows past retentionDays are kept this much longer in the archive's
   * Parquet files (archive.ts); 0: they are deleted at retentionDays.
   */
  archiveDays?: number;
}

const dayStart = (ms: number) => Math.floor(ms / DAY) * DAY;

/**
 * Where retention cuts: raw rows before `raw` are deleted, roll-ups before `rollup`. With an
 * archive, whole days before `archiveFrom` move to it, and `raw` is the day boundary that
 * the archive's days end at (its older days are dropped).
 */
export function retentionCuts(
  keep: Retention,
  nowMs: number,
): { raw: number; rollup: number; archiveFrom?: number } {
  const rollup = nowMs - keep.rollupRetentionDays * DAY;
  const archiveDays = keep.archiveDays ?? 0;
  if (archiveDays === 0) return { raw: nowMs - keep.retentionDays * DAY, rollup };
  return {
    raw: dayStart(nowMs - (keep.retentionDays + archiveDays) * DAY),
    rollup,
    archiveFrom: dayStart(nowMs - keep.retentionDays * DAY),
  };
}

/**
 * Rolls whole minutes older than two minutes up into flows_1m (once each), then removes
 * raw rows past the retention (and the archive's) and roll-ups past theirs.
 */
export async function maintain(db: DuckDBConnection, keep: Retention, nowMs: number): Promise<void> {
  const state = await db.runAndReadAll(
    `SELECT done_ms::DOUBLE AS d FROM ${ROLLUP_STATE.name} WHERE name = '${FLOWS_1M.name}'`,
  );
  const done = Number(state.getRowObjectsJS()[0]?.d ?? 0);
  const upTo = Math.floor((nowMs - 2 * MINUTE) / MINUTE) * MINUTE;
  if (upTo > done) {
    await db.run('BEGIN TRANSACTION');
    try {
      await db.run(
        `INSERT INTO ${FLOWS_1M.name} BY NAME
         SELECT (time_ms // 60000) * 60000 AS minute_ms, node, src, dst, protocol, locality, src_node, dst_node,
                sum(packets) AS packets, sum(bytes) AS bytes, count(*) AS records
         FROM ${FLOWS.name} WHERE time_ms >= $1 AND time_ms < $2
         GROUP BY ALL`,
        [done, upTo],
      );
      await db.run(`INSERT OR REPLACE INTO ${ROLLUP_STATE.name} VALUES ('${FLOWS_1M.name}', $1)`, [upTo]);
      await db.run('COMMIT');
    } catch (err) {
      await db.run('ROLLBACK');
      throw err;
    }
  }
  const cut = retentionCuts(keep, nowMs);
  for (const t of TABLES) {
    const time = t.columns.find((c) => c.time);
    if (t.retention && time)
      await db.run(`DELETE FROM ${t.name} WHERE ${time.name} < $1`, [cut[t.retention]]);
  }
}
