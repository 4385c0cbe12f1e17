/**
 * A tower process on a real NATS JetStream bus, fed by real node export links (TowerLink,
 * with its on-disk spool, as `tacmesh node run` uses it), and what the bus tests check at
 * the end: every record of each node in the store once, none missing.
 */
import { DuckDBInstance } from '@duckdb/node-api';
import { benchRecords, benchStats } from '../../bench/tower/records.js';
import { SeqAllocator } from '../../src/node/export/seq.js';
import { TowerLink } from '../../src/node/export/tower-client.js';
import { pkiPaths } from '../../src/pki/ca.js';
import type { NatsSet } from './nats.js';
import { type Json, type TowerRig, waitFor } from './tower-process.js';

export { sleep, waitFor } from './wait.js';

/** tower.yaml's `bus` on these servers. */
export function busYaml(nats: NatsSet, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { bus: { url: nats.url, domain: 'b1', publishTimeoutMs: 1000, ...extra } };
}

/**
 * A node's real export link to the rig's tower (or to every one of `towers`, a leader and its
 * standby, with the rig's certificates), spooling in `stateDir` (default: the rig's directory).
 */
export async function nodeLink(
  rig: TowerRig,
  name: string,
  stateDir = rig.dir,
  towers = [`127.0.0.1:${rig.controlPort}`],
): Promise<TowerLink> {
  const paths = pkiPaths(rig.pki);
  const link = new TowerLink(
    {
      node: name,
      tower: towers,
      tls: { caCert: paths.caCert, cert: paths.cert(name), key: paths.key(name) },
      hello: () => ({ subnets: [], slices: [], position: null }),
      onMonitorConfig: () => undefined,
      spool: { dir: `${stateDir}/spool-${name}`, maxBytes: 256 * 1024 ** 2 },
    },
    new SeqAllocator(`${stateDir}/seq-${name}`),
  );
  await link.start();
  return link;
}

/**
 * Feeds `batches` batches of `size` flow records and a stats record (which closes a batch),
 * one every `everyMs`; returns how many records that is.
 */
export async function feed(link: TowerLink, batches: number, size: number, everyMs = 20): Promise<number> {
  for (let b = 0; b < batches; b++) {
    link.flows(benchRecords(size, b * size, Date.now()));
    link.stats(benchStats());
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return batches * (size + 1);
}

/** Waits until the tower acknowledged each link's first `records` records (seqs 1…records). */
export async function allAcked(links: TowerLink[], records: number, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    'every batch acknowledged',
    async () => (links.every((l) => l.spool.acked >= records) ? true : undefined),
    timeoutMs,
  );
}

/** Waits until the tower's writer has stored everything on the bus. */
export async function writerDone(rig: TowerRig, timeoutMs = 30_000): Promise<Json> {
  const since = Date.now();
  return waitFor(
    "the writer's backlog empty",
    async () => {
      const bus = (await rig.api('health').catch(() => undefined))?.body?.bus;
      return bus && bus.checkedMs > since && bus.pending === 0 && bus.ackPending === 0 ? bus : undefined;
    },
    timeoutMs,
  );
}

export interface StoredSeqs {
  rows: number;
  distinct: number;
  lo: number;
  hi: number;
}

/** A node's flow and stats records in the store file (read with the tower stopped). */
export async function storedSeqs(rig: TowerRig, node: string): Promise<StoredSeqs> {
  const db = await DuckDBInstance.create(`${rig.dir}/tower.duckdb`);
  const c = await db.connect();
  try {
    const r = await c.runAndReadAll(
      `WITH s AS (SELECT seq FROM flows WHERE node = $1 UNION ALL SELECT seq FROM monitor_stats WHERE node = $1)
       SELECT count(*)::DOUBLE AS rows, count(DISTINCT seq)::DOUBLE AS distinct, coalesce(min(seq), 0)::DOUBLE AS lo,
              coalesce(max(seq), 0)::DOUBLE AS hi FROM s`,
      [node],
    );
    return r.getRowObjectsJS()[0] as unknown as StoredSeqs;
  } finally {
    c.closeSync();
    db.closeSync();
  }
}
