import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fullBatch } from '../../../test/support/ingest-batch.js';
import { withTempDir } from '../../../test/support/temp-dir.js';
import { parseConfig } from '../../shared/config.js';
import { conversations, httpRequests, httpStatus, nodeSeqs, summary } from '../api/queries.js';
import { towerConfigSchema } from '../config.js';
import type { FlowRow } from '../model.js';
import { ARCHIVED, DAY_MS } from './archive.js';
import { DuckStore } from './duckdb.js';

const MOVER = new URL('../../../test/support/archive-mover.ts', import.meta.url).pathname;
const OPTIONS = { retentionDays: 7, rollupRetentionDays: 90, archiveDays: 30 };
/** Noon on 1 December 2026: the days of 21, 22 and 23 November are past the retention, whole. */
const NOW = Date.UTC(2026, 11, 1, 12);
const [DAY21, DAY22, DAY23] = [21, 22, 23].map((d) => Date.UTC(2026, 10, d)) as [number, number, number];
const OLD_DAYS = [DAY21, DAY22, DAY23];

const withDir = (fn: (dir: string) => Promise<void>) => withTempDir('tacmesh-archive-', fn);

/** Records of every kind on three old days, one past the retention but in a day not yet whole, one recent. */
async function fill(store: DuckStore): Promise<void> {
  const times = [
    ...OLD_DAYS.flatMap((d) => [d + 3_600_000, d + 20 * 3_600_000]),
    NOW - 7.2 * DAY_MS,
    NOW - 3_600_000,
  ];
  for (const [i, t] of times.entries()) {
    assert.equal(await store.append(fullBatch('n1', 1 + 5 * i, t)), 5);
    await store.appendEvent({
      node: 'n1',
      timeMs: t,
      entity: 'qos',
      problem: 'p',
      action: 'a',
      ok: true,
      cause: '',
      error: '',
      tookMs: i,
    });
    await store.appendMeshStep({
      timeMs: t,
      who: 'op',
      action: 'link-cut',
      subject: 'n1-n2',
      label: `step ${i}`,
    });
    await store.appendNodeVia({ timeMs: t, node: 'n1', via: i % 2 ? 'n2' : null });
  }
}

/** Every row of every archived table as the queries see them, and the API's answers over all the days. */
async function answers(store: DuckStore) {
  const db = store.reader;
  const w = { fromMs: NOW - 20 * DAY_MS, toMs: NOW };
  const tables: Record<string, unknown[]> = {};
  for (const t of ARCHIVED)
    tables[t.name] = (await db.runAndReadAll(`SELECT * FROM ${t.name} ORDER BY ALL`)).getRowObjectsJS();
  return {
    tables,
    summary: await summary(db, w),
    conversations: await conversations(db, w),
    http: await httpRequests(db, w, {}),
    status: await httpStatus(db, w),
    seqs: await nodeSeqs(db, 'n1', w),
  };
}

async function liveRows(store: DuckStore, table: string, beforeMs: number): Promise<number> {
  const r = await store.reader.runAndReadAll(
    `SELECT count(*)::INTEGER AS n FROM main.${table} WHERE time_ms < $1`,
    [beforeMs],
  );
  return Number(r.getRowObjectsJS()[0]?.n);
}

const files = (dir: string, table: string, day: string) =>
  existsSync(join(dir, 'archive', table, day)) ? readdirSync(join(dir, 'archive', table, day)) : [];

test('days past the retention move to Parquet, the API answers as before, and a day goes with its directory', () =>
  withDir(async (dir) => {
    const store = await DuckStore.open(join(dir, 'tower.duckdb'), OPTIONS);
    let flowsKept: unknown[] = [];
    try {
      await fill(store);
      const before = await answers(store);
      assert.equal(before.seqs.rows, 40, 'eight batches of five records, each once');

      await store.maintain(NOW);
      for (const t of ARCHIVED) {
        assert.equal(
          await liveRows(store, t.name, DAY23 + DAY_MS),
          0,
          `${t.name}: the old days left the table`,
        );
        for (const day of ['day=2026-11-21', 'day=2026-11-22', 'day=2026-11-23'])
          assert.match(
            files(dir, t.name, day).join(),
            /^part-[\w-]+\.parquet$/,
            `${t.name} ${day}: one Parquet file`,
          );
      }
      assert.equal(
        await liveRows(store, 'flows', NOW),
        2,
        'the day not yet whole and the recent one stay live',
      );
      assert.deepEqual(await answers(store), before, 'every row and every answer as before the move');

      await store.maintain(NOW);
      assert.equal(files(dir, 'flows', 'day=2026-11-22').length, 1, 'a second pass moves nothing again');

      // A node's spool brings a record of an archived day late: the day gets a second part.
      await store.append({
        ...fullBatch('n1', 100, DAY22 + 5000),
        http: [],
        stats: [],
        links: [],
        routes: [],
      });
      await store.maintain(NOW);
      assert.equal(files(dir, 'flows', 'day=2026-11-22').length, 2, 'the late record in a part of its own');
      const late = await answers(store);
      assert.equal(late.seqs.rows, 41, 'the late record counted once');

      const dayRows = (rows: unknown[], day: number) =>
        rows.filter((r) => {
          const t = Number((r as { time_ms: bigint }).time_ms);
          return t >= day && t < day + DAY_MS;
        });
      rmSync(join(dir, 'archive', 'flows', 'day=2026-11-22'), { recursive: true });
      const dropped = await answers(store);
      assert.deepEqual(
        dropped.tables.flows,
        (late.tables.flows ?? []).filter((r) => !dayRows([r], DAY22).length),
        'deleting the directory takes exactly that day of flows away',
      );
      assert.deepEqual(dropped.tables.http, late.tables.http, 'and nothing of the other tables');

      // 29 days on, the archive's 30 days have passed for 21 and 22 November, not for the 23rd.
      await store.maintain(NOW + 29 * DAY_MS);
      for (const t of ARCHIVED) {
        assert.deepEqual(files(dir, t.name, 'day=2026-11-21'), [], `${t.name}: 21 November dropped`);
        assert.equal(files(dir, t.name, 'day=2026-11-23').length, 1, `${t.name}: 23 November kept`);
      }
      const kept = await answers(store);
      flowsKept = kept.tables.flows ?? [];
      assert.deepEqual(kept.tables.http, [
        ...dayRows(late.tables.http ?? [], DAY23),
        ...(late.tables.http ?? []).filter(
          (r) => Number((r as { time_ms: bigint }).time_ms) >= DAY23 + DAY_MS,
        ),
      ]);
    } finally {
      store.close();
    }
    // Every day of http deleted while the tower is stopped: its queries read the live table alone.
    rmSync(join(dir, 'archive', 'http'), { recursive: true });
    const again = await DuckStore.open(join(dir, 'tower.duckdb'), OPTIONS);
    try {
      const now = await answers(again);
      assert.equal(
        now.tables.http?.length,
        await liveRows(again, 'http', NOW + 30 * DAY_MS),
        'http: the live rows',
      );
      assert.deepEqual(now.tables.flows, flowsKept, 'flows as before');
    } finally {
      again.close();
    }
  }));

test('a tower that dies between the steps of a move loses no day and doubles none', async () => {
  for (const steps of [['write'], ['write', 'commit']])
    await withDir(async (dir) => {
      const path = join(dir, 'tower.duckdb');
      let store = await DuckStore.open(path, OPTIONS);
      let before: Awaited<ReturnType<typeof answers>>;
      try {
        await fill(store);
        before = await answers(store);
        const archive = store.archive;
        assert.ok(archive);
        for (const day of await archive.due(DAY23 + DAY_MS)) {
          const part = await archive.write(day);
          if (steps.includes('commit')) await archive.commit(day, part, NOW);
        }
      } finally {
        store.close(); // the tower dies here: what DuckDB committed and what is on disk stay
      }
      store = await DuckStore.open(path, OPTIONS);
      try {
        const day = files(dir, 'flows', 'day=2026-11-22');
        if (steps.length === 1) assert.deepEqual(day, [], 'an uncommitted file is deleted at the next start');
        else
          assert.match(day.join(), /^part-[\w-]+\.parquet$/, 'a committed file is renamed at the next start');
        assert.deepEqual(
          await answers(store),
          before,
          `after dying past ${steps.join(', ')}: every row once`,
        );
        await store.maintain(NOW);
        assert.equal(files(dir, 'flows', 'day=2026-11-22').length, 1, 'one file for the day');
        assert.deepEqual(await answers(store), before, 'and once more after the move is done');
      } finally {
        store.close();
      }
    });
});

test('a tower killed with SIGKILL while it moves days loses no row and doubles none', () =>
  withDir(async (dir) => {
    const path = join(dir, 'tower.duckdb');
    let store = await DuckStore.open(path, OPTIONS);
    let before: Awaited<ReturnType<typeof answers>>;
    try {
      await fill(store);
      // Days big enough that the kill lands inside a move.
      for (const [i, day] of OLD_DAYS.entries())
        for (let b = 0; b < 8; b++) {
          const seq0 = 1_000_000 * (i + 1) + b * 5000;
          const one = fullBatch('n1', seq0, day + DAY_MS / 2);
          const flows = Array.from({ length: 5000 }, (_, k) => ({
            ...(one.flows[0] as FlowRow),
            seq: seq0 + k,
            bytes: k,
          }));
          await store.append({
            ...one,
            lastSeq: seq0 + 4999,
            flows,
            http: [],
            stats: [],
            links: [],
            routes: [],
          });
        }
      before = await answers(store);
    } finally {
      store.close();
    }
    // Killed once a day's file is being written, then once a day has been moved.
    for (const when of [(f: string) => f.endsWith('.tmp'), (f: string) => f.endsWith('.parquet')]) {
      const mover = spawn(process.execPath, ['--import', 'tsx', MOVER, path, String(NOW)], {
        stdio: 'inherit',
      });
      const exited = once(mover, 'exit');
      const flowsDir = join(dir, 'archive', 'flows');
      const seen = () =>
        existsSync(flowsDir) && readdirSync(flowsDir).some((d) => readdirSync(join(flowsDir, d)).some(when));
      while (!seen() && mover.exitCode === null) await new Promise((r) => setTimeout(r, 2));
      mover.kill('SIGKILL');
      await exited;
      store = await DuckStore.open(path, OPTIONS);
      try {
        assert.deepEqual(await answers(store), before, `killed at ${when}: every row once`);
      } finally {
        store.close();
      }
    }
    store = await DuckStore.open(path, OPTIONS);
    try {
      await store.maintain(NOW);
      assert.deepEqual(await answers(store), before, 'and once more when the pass is done');
      assert.equal(await liveRows(store, 'flows', DAY23 + DAY_MS), 0, 'every old day moved');
    } finally {
      store.close();
    }
  }));

test('store.archiveDays: a whole number of days, and a store file', async () => {
  const yaml = (days: string) =>
    `pki: { dir: /p }\ntokens: /t.yaml\nstore: { retentionDays: 7, archiveDays: ${days} }\n`;
  assert.equal(parseConfig('tower.yaml', yaml('90'), towerConfigSchema).store.archiveDays, 90);
  for (const bad of ['1.5', '-1', 'a month'])
    assert.throws(
      () => parseConfig('tower.yaml', yaml(bad), towerConfigSchema),
      /tower\.yaml: store\.archiveDays: /,
    );
  await assert.rejects(DuckStore.open(':memory:', OPTIONS), /store.archiveDays needs a store file/);
});
