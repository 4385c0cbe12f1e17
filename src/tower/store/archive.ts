/**
 * Retention beyond days: whole days of raw rows past the store's retention move out of
 * DuckDB into Parquet files, one directory per table and day, hive-partitioned
 * (<dir>/<table>/day=YYYY-MM-DD/part-<id>.parquet). The queries read them with the live
 * table: the reader connection looks tables up in the schema `all_days` first, where each
 * table with files has a view of its rows UNION ALL its files. A day is dropped by deleting
 * its directory (the archive retention does, an operator may).
 *
 * A move is crash-safe: the day is written under a temporary name and fsynced; then its
 * rows are deleted and the part recorded in archive_parts, in one transaction; only then is
 * the file renamed into the view's glob. At open, a temporary file whose part was recorded
 * is renamed (the tower died after the commit), one whose part was not is deleted (the rows
 * are still in the table), and records of files gone are forgotten. Renaming before the
 * commit would let the glob show the day twice until the commit; this order only leaves it
 * out for the instant of the rename.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { fsyncPath } from '../../shared/atomic-file.js';
import type { Table } from './columns.js';
import { ARCHIVE_PARTS, TABLES } from './tables.js';

export const DAY_MS = 86_400_000;

/** The schema the reader looks in first: a view per archived table. */
export const ALL_DAYS = 'all_days';

/** Every table with a raw retention: its days go to the archive rather than away. */
export const ARCHIVED = TABLES.filter((t) => t.retention === 'raw');

const timeOf = (t: Table<never>) => {
  const time = t.columns.find((c) => c.time);
  if (!time) throw new Error(`table ${t.name} has no time column`);
  return time.name;
};

const dayName = (dayMs: number) => `day=${new Date(dayMs).toISOString().slice(0, 10)}`;
const dayOf = (name: string) =>
  /^day=\d{4}-\d{2}-\d{2}$/.test(name) ? Date.parse(`${name.slice(4)}T00:00:00Z`) : NaN;
const tempName = (part: string) => `.${part}.tmp`;
const sqlString = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** A day of a table that is due to move, or to be dropped. */
export interface Day {
  table: Table<never>;
  dayMs: number;
}

export class Archive {
  /** The tables whose view is in place (they have files). */
  private readonly viewed = new Set<string>();

  private constructor(
    readonly dir: string,
    private readonly db: DuckDBConnection,
  ) {}

  /** Reconciles the directory with archive_parts (after a crash mid-move) and puts the views in place. */
  static async open(db: DuckDBConnection, dir: string): Promise<Archive> {
    const a = new Archive(dir, db);
    await db.run(`CREATE SCHEMA IF NOT EXISTS ${ALL_DAYS}`);
    await a.reconcile();
    // Every view made again (the store may have moved) or dropped (its files deleted while the tower was stopped).
    await a.refreshViews(true);
    return a;
  }

  private dayDir(t: Table<never>, dayMs: number): string {
    return join(this.dir, t.name, dayName(dayMs));
  }

  private async recorded(): Promise<Set<string>> {
    const r = await this.db.runAndReadAll(
      `SELECT table_name, day_ms::DOUBLE AS d, part FROM ${ARCHIVE_PARTS.name}`,
    );
    return new Set(
      r
        .getRowObjectsJS()
        .map((x) => join(this.dir, String(x.table_name), dayName(Number(x.d)), String(x.part))),
    );
  }

  private async reconcile(): Promise<void> {
    const recorded = await this.recorded();
    for (const t of ARCHIVED) {
      const tableDir = join(this.dir, t.name);
      if (!existsSync(tableDir)) continue;
      for (const day of readdirSync(tableDir)) {
        if (Number.isNaN(dayOf(day))) continue;
        const dayDir = join(tableDir, day);
        for (const f of readdirSync(dayDir)) {
          const m = /^\.(.+)\.tmp$/.exec(f);
          if (!m?.[1]) continue;
          const final = join(dayDir, m[1]);
          if (recorded.has(final)) renameSync(join(dayDir, f), final);
          else unlinkSync(join(dayDir, f));
          fsyncPath(dayDir);
        }
        if (readdirSync(dayDir).length === 0) rmSync(dayDir, { recursive: true });
      }
    }
    for (const file of recorded)
      if (!existsSync(file)) {
        const [table, day, part] = file.slice(this.dir.length + 1).split('/');
        await this.db.run(
          `DELETE FROM ${ARCHIVE_PARTS.name} WHERE table_name = $1 AND day_ms = $2 AND part = $3`,
          [table ?? '', dayOf(day ?? ''), part ?? ''],
        );
      }
  }

  /** The days on disk of a table, oldest first. */
  days(t: Table<never>): number[] {
    const tableDir = join(this.dir, t.name);
    if (!existsSync(tableDir)) return [];
    return readdirSync(tableDir)
      .map(dayOf)
      .filter((d) => !Number.isNaN(d))
      .sort((a, b) => a - b);
  }

  private hasFiles(t: Table<never>): boolean {
    return this.days(t).some((d) => readdirSync(this.dayDir(t, d)).some((f) => f.endsWith('.parquet')));
  }

  /**
   * A view for each table with files, none for one without (read_parquet refuses a glob that
   * matches nothing); redone only when that changes.
   */
  async refreshViews(all = false): Promise<void> {
    for (const t of ARCHIVED) {
      const has = this.hasFiles(t);
      if (!all && has === this.viewed.has(t.name)) continue;
      if (has) {
        const glob = sqlString(join(this.dir, t.name, '*', '*.parquet'));
        await this.db.run(
          `CREATE OR REPLACE VIEW ${ALL_DAYS}.${t.name} AS
           SELECT * FROM main.${t.name}
           UNION ALL BY NAME
           SELECT * EXCLUDE (day) FROM read_parquet(${glob}, hive_partitioning = true, union_by_name = true)`,
        );
        this.viewed.add(t.name);
      } else {
        await this.db.run(`DROP VIEW IF EXISTS ${ALL_DAYS}.${t.name}`);
        this.viewed.delete(t.name);
      }
    }
  }

  /** The whole days of rows in the live tables that end before `beforeMs` (a day boundary). */
  async due(beforeMs: number): Promise<Day[]> {
    const out: Day[] = [];
    for (const t of ARCHIVED) {
      const time = timeOf(t);
      const r = await this.db.runAndReadAll(
        `SELECT DISTINCT (${time} // ${DAY_MS}) * ${DAY_MS} AS d FROM main.${t.name} WHERE ${time} < $1 ORDER BY d`,
        [beforeMs],
      );
      for (const row of r.getRowObjectsJS()) out.push({ table: t, dayMs: Number(row.d) });
    }
    return out;
  }

  /**
   * Step 1 of a move: the day's rows into a Parquet file under a temporary name, on disk.
   * Returns the part's name and its rows.
   */
  async write(day: Day): Promise<{ part: string; rows: number }> {
    const dir = this.dayDir(day.table, day.dayMs);
    const fresh = !existsSync(dir);
    mkdirSync(dir, { recursive: true });
    if (fresh) fsyncPath(join(dir, '..'));
    const part = `part-${randomUUID()}.parquet`;
    const tmp = join(dir, tempName(part));
    const time = timeOf(day.table);
    const r = await this.db.runAndReadAll(
      `COPY (SELECT * FROM main.${day.table.name} WHERE ${time} >= ${day.dayMs} AND ${time} < ${day.dayMs + DAY_MS}
             ORDER BY ${time}) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd)`,
    );
    fsyncPath(tmp);
    return { part, rows: Number(r.rowsChanged) };
  }

  /** Step 2: the day's rows out of the table and the part recorded, in one transaction. */
  async commit(day: Day, part: { part: string; rows: number }, nowMs: number): Promise<void> {
    const time = timeOf(day.table);
    await this.db.run('BEGIN TRANSACTION');
    try {
      const deleted = await this.db.run(
        `DELETE FROM main.${day.table.name} WHERE ${time} >= $1 AND ${time} < $2`,
        [day.dayMs, day.dayMs + DAY_MS],
      );
      if (Number(deleted.rowsChanged) !== part.rows)
        throw new Error(
          `${day.table.name} ${dayName(day.dayMs)}: ${deleted.rowsChanged} rows to delete, ${part.rows} written`,
        );
      await this.db.run(`INSERT INTO ${ARCHIVE_PARTS.name} VALUES ($1, $2, $3, $4, $5)`, [
        day.table.name,
        day.dayMs,
        part.part,
        part.rows,
        nowMs,
      ]);
      await this.db.run('COMMIT');
    } catch (err) {
      await this.db.run('ROLLBACK');
      unlinkSync(join(this.dayDir(day.table, day.dayMs), tempName(part.part)));
      throw err;
    }
  }

  /** Step 3: the file into the queries' glob. */
  async publish(day: Day, part: { part: string }): Promise<void> {
    const dir = this.dayDir(day.table, day.dayMs);
    renameSync(join(dir, tempName(part.part)), join(dir, part.part));
    fsyncPath(dir);
    await this.refreshViews();
  }

  /** Moves a day of a table into the archive. */
  async move(day: Day, nowMs: number): Promise<void> {
    const part = await this.write(day);
    await this.commit(day, part, nowMs);
    await this.publish(day, part);
  }

  /** Deletes the days of every table that end before `beforeMs`. */
  async drop(beforeMs: number): Promise<void> {
    for (const t of ARCHIVED)
      for (const d of this.days(t))
        if (d < beforeMs) {
          rmSync(this.dayDir(t, d), { recursive: true, force: true });
          await this.db.run(`DELETE FROM ${ARCHIVE_PARTS.name} WHERE table_name = $1 AND day_ms = $2`, [
            t.name,
            d,
          ]);
        }
    await this.refreshViews();
  }
}
