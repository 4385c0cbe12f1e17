/**
 * bench/bus (issue 21): the tower's ingest through NATS JetStream (docs/bus.md) against its
 * direct path and InfluxDB 1.x, in one run. The same flow records go from two node
 * processes (bench/tower/sender.ts, real export links) to a tower with no bus, with an R1
 * stream on one nats-server, and with an R3 stream on a cluster of three; a record counts
 * once it is in DuckDB (through the bus: PubAck'd, then stored by the writer). Then the same
 * records to InfluxDB as bench/tower writes them; a standby tower's failover after a SIGKILL
 * of the leader (as standby.test.ts); and the bytes a record takes in the stream, in DuckDB
 * and in a Parquet day file of the archive.
 *
 *   node --import tsx bench/bus/run.ts [--rows 300000] [--failovers 3]
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { busSchema } from '../../src/tower/bus/config.js';
import type { IngestBatch } from '../../src/tower/model.js';
import type { Tower } from '../../src/tower/tower.js';
import { busYaml } from '../../test/support/bus-rig.js';
import { freePort } from '../../test/support/free-port.js';
import { startInfluxd } from '../../test/support/influxd.js';
import { type NatsSet, startNats, startNatsCluster } from '../../test/support/nats.js';
import { treeCpuNs } from '../../test/support/proc-stat.js';
import { TowerRig, waitFor } from '../../test/support/tower-process.js';
import { benchTower, influxIngest, sendFromNodes } from '../tower/ingest.js';

const { values: args } = parseArgs({
  options: { rows: { type: 'string', default: '300000' }, failovers: { type: 'string', default: '3' } },
});
const ROWS = Number(args.rows);
const FAILOVERS = Number(args.failovers);
const NODES = ['bench', 'bench2'];

const cpuS = (pids: number[]) => pids.reduce((s, p) => s + treeCpuNs(p, false), 0) / 1e9;
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? Number.NaN;

interface Ingest {
  name: string;
  rate: number;
  /** CPU seconds per million records: the tower's process, and the NATS servers'. */
  towerCpu: number;
  natsCpu: number;
  pubAckMs?: number[];
  streamBytes?: number;
  duckBytes?: number;
  parquetBytes?: number;
}

/** A tower in this process (as bench/tower), fed by two node processes; optionally on a bus. */
async function ingest(name: string, nats: NatsSet | undefined, replicas: number): Promise<Ingest> {
  const dir = mkdtempSync('/tmp/tacmesh-bench-bus-');
  let tower: Tower | undefined;
  try {
    tower = await benchTower(
      dir,
      NODES,
      nats
        ? { bus: busSchema.parse({ url: nats.url, domain: 'bench', replicas, publishTimeoutMs: 10_000 }) }
        : {},
    );
    // PubAck latency: each node batch's publish, timed where the control plane awaits it.
    const pubAckMs: number[] = [];
    const publisher = tower.bus?.publisher;
    if (publisher) {
      const publish = publisher.publish.bind(publisher);
      publisher.publish = async (b: IngestBatch) => {
        const t = performance.now();
        await publish(b);
        pubAckMs.push(performance.now() - t);
      };
    }
    const natsPids = (nats?.servers ?? []).map((s) => s.pid ?? 0);
    const records = ROWS + ROWS / 5000; // each batch of 5000 flows closes with a stats record
    const stored = async () => {
      const r = await tower?.store.reader.runAndReadAll(
        'SELECT (SELECT count(*) FROM flows) + (SELECT count(*) FROM monitor_stats) AS n',
      );
      return Number(r?.getRowObjectsJS()[0]?.n ?? 0);
    };
    const cpu0 = process.cpuUsage();
    const nats0 = cpuS(natsPids);
    const t0 = performance.now();
    await sendFromNodes(tower.controlPort, dir, ROWS, NODES);
    await waitFor(
      'every record stored',
      async () => ((await stored()) >= records ? true : undefined),
      600_000,
    );
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const perMillion = 1e6 / ROWS;
    const out: Ingest = {
      name,
      rate: ROWS / (ms / 1000),
      towerCpu: ((cpu.user + cpu.system) / 1e6) * perMillion,
      natsCpu: (cpuS(natsPids) - nats0) * perMillion,
      ...(publisher ? { pubAckMs } : {}),
    };
    if (nats && tower.bus) {
      const info = await tower.bus.connection.jsm.streams.info(tower.bus.connection.stream);
      out.streamBytes = info.state.bytes / records;
    }
    if (!nats) {
      await tower.store.reader.run('CHECKPOINT');
      out.duckBytes = statSync(`${dir}/tower.duckdb`).size / records;
      await tower.store.reader.run(
        `COPY (SELECT * FROM main.flows ORDER BY time_ms) TO '${dir}/day.parquet' (FORMAT parquet, COMPRESSION zstd)`,
      );
      out.parquetBytes = statSync(`${dir}/day.parquet`).size / ROWS;
    }
    return out;
  } finally {
    await tower?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Two tower processes on one bus, lease ttlMs 1500 as standby.test.ts: ms from the leader's SIGKILL to the standby leading. */
async function failover(nats: NatsSet): Promise<number> {
  const a = new TowerRig();
  const b = new TowerRig();
  try {
    const lease = (holder: string) => ({ consumer: `writer-${holder}`, lease: { holder, ttlMs: 1500 } });
    await a.start([], busYaml(nats, lease('a')));
    await waitFor('a leading', async () => ((await a.api('health')).body.bus.lease.leads ? true : undefined));
    await b.prepare([], a);
    await b.launch({ control: { listen: `127.0.0.1:${await freePort()}` }, ...busYaml(nats, lease('b')) });
    await a.kill9();
    const killedAt = performance.now();
    await waitFor('b leading', async () => ((await b.api('health')).body.bus.lease.leads ? true : undefined));
    return performance.now() - killedAt;
  } finally {
    await a.stop();
    await b.stop();
  }
}

const runs: Ingest[] = [];
runs.push(await ingest('direct (no bus)', undefined, 1));
const r1 = await startNats();
const failovers: number[] = [];
try {
  runs.push(await ingest('bus R1 (1 server)', r1, 1));
  for (let i = 0; i < FAILOVERS; i++) failovers.push(await failover(r1));
} finally {
  await r1.stop();
}
const r3 = await startNatsCluster();
try {
  runs.push(await ingest('bus R3 (3 servers)', r3, 3));
} finally {
  await r3.stop();
}
const influxd = await startInfluxd();
let influx: { rate: number; cpu: number };
try {
  await fetch(`${influxd.url}/query`, {
    method: 'POST',
    body: new URLSearchParams({ q: 'CREATE DATABASE bench' }),
  });
  const cpu0 = treeCpuNs(influxd.pid, false);
  const ms = await influxIngest(influxd.url, 'bench', ROWS, Date.now());
  influx = { rate: ROWS / (ms / 1000), cpu: ((treeCpuNs(influxd.pid, false) - cpu0) / 1e9) * (1e6 / ROWS) };
} finally {
  await influxd.stop();
}

const [direct] = runs;
if (!direct) throw new Error('no direct run');
const f0 = (x: number) => Math.round(x).toLocaleString();
const f1 = (x: number | undefined) => (x === undefined ? '' : x.toFixed(1));
console.log(
  `\nbench/bus — ${ROWS.toLocaleString()} flow records from two node processes, counted once stored in DuckDB`,
);
console.log(
  'path                 records/s   × direct   × InfluxDB   CPU-s/M tower   CPU-s/M nats   PubAck p50 / p99 ms',
);
for (const r of [...runs]) {
  const p = r.pubAckMs;
  console.log(
    `${r.name.padEnd(20)}${f0(r.rate).padStart(10)}${(r.rate / direct.rate).toFixed(2).padStart(11)}${(r.rate / influx.rate).toFixed(2).padStart(13)}${f1(r.towerCpu).padStart(16)}${f1(r.natsCpu).padStart(15)}   ${p ? `${f1(quantile(p, 0.5))} / ${f1(quantile(p, 0.99))} (${p.length} batches)` : '-'}`,
  );
}
console.log(
  `${'InfluxDB 1.x (HTTP)'.padEnd(20)}${f0(influx.rate).padStart(10)}${(influx.rate / direct.rate).toFixed(2).padStart(11)}${'1.00'.padStart(13)}${f1(influx.cpu).padStart(16)}${''.padStart(15)}   (4 writers; CPU: influxd)`,
);
console.log(
  `failover: the standby leads ${failovers.map((x) => Math.round(x)).join(', ')} ms after the leader's SIGKILL (lease ttlMs 1500; median ${Math.round(quantile(failovers, 0.5))} ms)`,
);
console.log('catch-up rate after a cut: not measured: needs echelons');
const [, busR1, busR3] = runs;
console.log(
  `bytes on disk per record: stream R1 ${f1(busR1?.streamBytes)}, R3 ${f1(busR3?.streamBytes)} (per copy; JSON batches); DuckDB ${f1(direct.duckBytes)}; Parquet (zstd) ${f1(direct.parquetBytes)}`,
);
