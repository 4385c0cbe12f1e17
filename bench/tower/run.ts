/**
 * bench/tower: the same flow records ingested by the tower (gRPC over mTLS → DuckDB, the real
 * node → tower path) and written to InfluxDB 1.x (line protocol over HTTP, 4 connections,
 * the paper's store), in one run; then the dashboard's questions asked of both over the
 * same rows. Prints rates, latencies and ratios.
 *
 *   node --import tsx bench/tower/run.ts [--rows 1000000] [--query-rows 10000000]
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pies, throughput } from '../../src/tower/api/queries.js';
import { InfluxSink, toLines } from '../../src/tower/store/influx.js';
import type { Tower } from '../../src/tower/tower.js';
import { startInfluxd } from '../../test/support/influxd.js';
import { treeCpuNs } from '../../test/support/proc-stat.js';
import { asIngest, benchTower, influxIngest, influxWrite, sendFromNodes } from './ingest.js';
import { benchRecords, SERIES } from './records.js';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    'query-rows': { type: 'string', default: '10000000' },
  },
});
const ROWS = Number(args.rows);
const QUERY_ROWS = Number(args['query-rows']);

/** CPU seconds (user + system) a process has used, from /proc. */
const cpuSeconds = (pid: number) => treeCpuNs(pid, false) / 1e9;

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const v = await fn();
  return [v, performance.now() - t];
}

const dir = mkdtempSync('/tmp/tacmesh-bench-tower-');
const influxd = await startInfluxd();
let tower: Tower | undefined;
try {
  tower = await benchTower(dir, ['bench', 'bench2']);
  const now = Date.now();

  // 1. Ingest from node processes through their own links: gRPC, mTLS, decode, classify, DuckDB, acks.
  //    Two senders, as two nodes; the tower's CPU time is measured as well as the wall time,
  //    because on this 2-core machine the senders compete with the tower for the cores.
  const towerCpu0 = process.cpuUsage();
  const grpcMs = await sendFromNodes(tower.controlPort, dir, ROWS);
  const towerCpu = process.cpuUsage(towerCpu0);
  const towerRate = ROWS / (grpcMs / 1000);
  const towerPerCore = ROWS / ((towerCpu.user + towerCpu.system) / 1e6);

  // 2. The same records to InfluxDB, 4 writers in parallel.
  const influx = new InfluxSink({ url: influxd.url, database: 'bench' });
  await influx.query('CREATE DATABASE bench');
  const write = (lines: string[]) => influxWrite(influxd.url, 'bench', lines);
  const influxCpu0 = cpuSeconds(influxd.pid);
  const influxMs = await influxIngest(influxd.url, 'bench', ROWS, now);
  const influxRate = ROWS / (influxMs / 1000);
  const influxPerCore = ROWS / (cpuSeconds(influxd.pid) - influxCpu0);

  // 3. Fill both to QUERY_ROWS (directly: this part is about queries), then ask the same questions.
  for (let off = ROWS; off < QUERY_ROWS; off += 50_000) {
    const b = asIngest(benchRecords(Math.min(50_000, QUERY_ROWS - off), off, now), off + 1_000_000_000);
    await tower.store.append(b);
    const lines = toLines(b);
    await Promise.all(
      [0, 1, 2, 3].map((q) => write(lines.slice((q * lines.length) / 4, ((q + 1) * lines.length) / 4))),
    );
  }
  const w = { fromMs: now - 5 * 60_000, toMs: now };
  const db = tower.store.reader;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const askBoth = async (name: string, duck: () => Promise<unknown>, influxql: string) => {
    const d: number[] = [];
    const f: number[] = [];
    for (let i = 0; i < 3; i++) {
      d.push((await timed(duck))[1]);
      f.push((await timed(() => influx.query(influxql)))[1]);
    }
    return { name, duck: median(d), influx: median(f) };
  };
  const from = `${(now - 5 * 60_000) * 1e6}`;
  const to = `${now * 1e6}`;
  const q = [
    await askBoth(
      'bytes by source, 5 min in 10 s buckets',
      () =>
        db.runAndReadAll(
          `SELECT src, (time_ms // 10000) AS b, sum(bytes) FROM flows WHERE time_ms >= ${w.fromMs} AND time_ms <= ${w.toMs} GROUP BY ALL`,
        ),
      `SELECT sum(bytes) FROM flow WHERE time >= ${from} AND time <= ${to} GROUP BY time(10s), src`,
    ),
    await askBoth(
      'throughput per node (dashboard)',
      () => throughput(db, w, 10_000),
      `SELECT sum(bytes) FROM flow WHERE time >= ${from} AND time <= ${to} GROUP BY time(10s), node`,
    ),
    await askBoth(
      'address frequency pies (dashboard)',
      () => pies(db, w),
      `SELECT count(bytes) FROM flow WHERE time >= ${from} AND time <= ${to} GROUP BY src`,
    ),
  ];

  console.log(
    `\nbench/tower — ${ROWS.toLocaleString()} flow records ingested, queries over ${QUERY_ROWS.toLocaleString()} rows (${SERIES} series)`,
  );
  console.log(`ingest  tower (gRPC mTLS → DuckDB): ${Math.round(towerRate).toLocaleString()} records/s`);
  console.log(`        InfluxDB 1.x (HTTP, 4 writers): ${Math.round(influxRate).toLocaleString()} points/s`);
  console.log(
    `        ratio tower / InfluxDB: ${(towerRate / influxRate).toFixed(2)}x (wall clock, clients on the same 2 cores)`,
  );
  console.log(
    `per CPU-second of the store's own process: tower ${Math.round(towerPerCore).toLocaleString()}, InfluxDB ${Math.round(influxPerCore).toLocaleString()} → ${(towerPerCore / influxPerCore).toFixed(2)}x`,
  );
  console.log('query                                   DuckDB ms   InfluxDB ms   InfluxDB / DuckDB');
  for (const r of q) {
    console.log(
      `${r.name.padEnd(40)}${r.duck.toFixed(0).padStart(9)}   ${r.influx.toFixed(0).padStart(11)}   ${(r.influx / r.duck).toFixed(1).padStart(17)}x`,
    );
  }
} finally {
  await tower?.stop();
  await influxd.stop();
  rmSync(dir, { recursive: true, force: true });
}
