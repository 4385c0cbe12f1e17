/**
 * The ingest both bench/tower and bench/bus measure: node processes sending flow records to
 * a tower through their real export links, and the same records as InfluxDB line protocol.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { initCa, issue } from '../../src/pki/ca.js';
import { createToken } from '../../src/tower/api/tokens.js';
import type { TowerConfig } from '../../src/tower/config.js';
import type { IngestBatch } from '../../src/tower/model.js';
import { toLines } from '../../src/tower/store/influx.js';
import { Tower } from '../../src/tower/tower.js';
import { benchRecords } from './records.js';

const BATCH = 5000;

/** bench records as the tower stores them (its decode and locality map's output). */
export function asIngest(recs: ReturnType<typeof benchRecords>, seq0: number): IngestBatch {
  return {
    node: 'bench',
    firstSeq: seq0,
    lastSeq: seq0 + recs.length - 1,
    stats: [],
    links: [],
    routes: [],
    http: [],
    flows: recs.map((r, i) => ({
      node: 'bench',
      seq: seq0 + i,
      timeMs: r.lastSeen,
      iface: r.iface,
      ifaceKind: 'container',
      direction: 'egress',
      ipVersion: 4,
      src: r.src,
      dst: r.dst,
      srcPort: r.srcPort,
      dstPort: r.dstPort,
      protocol: 6,
      packets: r.packets,
      bytes: r.bytes,
      tcpFlags: r.tcpFlags,
      dscp: 0,
      firstSeenMs: r.firstSeen,
      locality: 'external',
      srcNode: null,
      dstNode: null,
    })),
  };
}

/** A tower in this process on loopback, with a CA and certificates for `nodes`, its store in `dir`. */
export async function benchTower(
  dir: string,
  nodes: string[],
  extra: Partial<TowerConfig> = {},
): Promise<Tower> {
  await initCa(`${dir}/pki`);
  await issue(`${dir}/pki`, 'tower', 'tower');
  for (const n of nodes) await issue(`${dir}/pki`, 'node', n);
  createToken(`${dir}/tokens.yaml`, 'bench', 'viewer');
  return Tower.start({
    control: { listen: '127.0.0.1:0' },
    api: { listen: '127.0.0.1:0' },
    pki: { dir: `${dir}/pki`, name: 'tower' },
    store: { path: `${dir}/tower.duckdb`, retentionDays: 7, rollupRetentionDays: 90 },
    tokens: `${dir}/tokens.yaml`,
    ...extra,
  });
}

/**
 * Two node processes (sender.ts) send `rows` flow records between them to the tower's
 * control plane; resolves with the ms until both had every record acked.
 */
export async function sendFromNodes(
  controlPort: number,
  dir: string,
  rows: number,
  names = ['bench', 'bench2'],
) {
  const senders = names.map((node) =>
    spawn(
      process.execPath,
      [
        ...process.execArgv,
        new URL('./sender.ts', import.meta.url).pathname,
        `127.0.0.1:${controlPort}`,
        `${dir}/pki`,
        `${dir}/seq-${node}`,
        String(rows / names.length),
        node,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    ),
  );
  const exits = senders.map((sender) => once(sender, 'exit') as Promise<[number]>);
  const t0 = performance.now();
  for (const [code] of await Promise.all(exits))
    if (code !== 0) throw new Error(`sender exited with ${code}`);
  return performance.now() - t0;
}

/** Line protocol of batches to InfluxDB 1.x's /write. */
export async function influxWrite(url: string, db: string, lines: string[]): Promise<void> {
  const res = await fetch(`${url}/write?db=${db}&precision=ns`, { method: 'POST', body: lines.join('\n') });
  if (!res.ok) throw new Error(`InfluxDB: ${res.status} ${await res.text()}`);
}

/** The same `rows` records to InfluxDB, 4 writers in parallel; resolves with the ms it took. */
export async function influxIngest(url: string, db: string, rows: number, now: number): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < rows) {
      const off = next;
      next += BATCH;
      await influxWrite(
        url,
        db,
        toLines(asIngest(benchRecords(Math.min(BATCH, rows - off), off, now), off + 1)),
      );
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return performance.now() - t0;
}
