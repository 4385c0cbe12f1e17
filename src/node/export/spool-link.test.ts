import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { NodeTowerLab, sleep, waitFor } from '../../../test/support/node-tower.js';
import { sample, scrapeIn } from '../../../test/support/scrape.js';
import { Spool } from './spool.js';

const CUT_MS = 60_000;
const RPS = 20;

let t: NodeTowerLab;
before(async () => {
  t = new NodeTowerLab(171, 172);
  await t.start();
});
after(async () => {
  await t?.stop();
});

/** How many of `seqs` (sorted) lie in [lo, hi]. */
const within = (seqs: number[], lo: number, hi: number) => seqs.filter((s) => s >= lo && s <= hi).length;

test('a 60 s cut of the management link under traffic, with a kill -9 of the node during it: every record reaches the tower once', async () => {
  const first = t.startNode();
  await waitFor('the first records stored', async () => ((await t.seqs()).length > 0 ? true : undefined));
  const load = t.load(RPS, '/cut');
  await sleep(3000);

  const cutStart = Date.now();
  await t.mgmtLink('down');
  await sleep(CUT_MS / 2);
  first.child.kill('SIGKILL');
  await first.exited;
  // What the killed node had spooled, read the way the next node process will read it.
  const spool = new Spool(`${t.dir}/state/spool`);
  const spooledTo = spool.lastSeq;
  const unacked = spool.records;
  spool.close();
  const restartFrom = Number(readFileSync(`${t.dir}/state/seq`, 'utf8'));
  assert.ok(unacked > 10 * RPS, `the killed node left ${unacked} unacknowledged records on disk`);
  const second = t.startNode();
  await sleep(cutStart + CUT_MS - Date.now());
  await t.mgmtLink('up');
  const cutEnd = Date.now();

  // Backfill, then live data: the old records and new ones made after the link came back.
  await waitFor(
    'the backfill and live records after it',
    async () => {
      const seqs = await t.seqs();
      const latest = await t.query<{ n: number }>(
        `SELECT count(*)::DOUBLE AS n FROM monitor_stats WHERE node = 'node1' AND time_ms > ${cutEnd + 2000}`,
      );
      return within(seqs, 1, spooledTo) === spooledTo && (latest[0]?.n ?? 0) > 0 ? true : undefined;
    },
    30_000,
  );
  load.kill('SIGTERM');
  second.child.kill('SIGTERM');
  await second.exited;

  const seqs = await t.seqs();
  const last = seqs.at(-1) as number;
  assert.equal(new Set(seqs).size, seqs.length, 'no record stored twice');
  assert.equal(within(seqs, 1, spooledTo), spooledTo, 'every record of the killed node, from seq 1, no gap');
  assert.equal(within(seqs, spooledTo + 1, restartFrom - 1), 0, 'nothing between the two lives');
  assert.equal(
    within(seqs, restartFrom, last),
    last - restartFrom + 1,
    'every record of the restarted node, no gap',
  );

  // The records are the cut's own: its export intervals and its requests.
  const [cut] = await t.query<{ stats: number; http: number; lost: number }>(`
    SELECT (SELECT count(*) FROM monitor_stats WHERE node = 'node1' AND time_ms BETWEEN ${cutStart} AND ${cutEnd})::DOUBLE AS stats,
           (SELECT count(*) FROM http WHERE node = 'node1' AND url = '/cut' AND NOT response
              AND time_ms BETWEEN ${cutStart} AND ${cutEnd})::DOUBLE AS http,
           (SELECT max(records_lost) FROM monitor_stats WHERE node = 'node1')::DOUBLE AS lost`);
  console.log(JSON.stringify({ spooledTo, unacked, restartFrom, last, stored: seqs.length, duringCut: cut }));
  assert.ok(
    (cut?.stats ?? 0) >= (CUT_MS / 1000) * 0.85,
    `an interval's stats for nearly every second of the cut`,
  );
  assert.ok(
    (cut?.http ?? 0) >= (CUT_MS / 1000) * RPS * 0.8,
    'the requests made during the cut (less the seconds the node was down)',
  );
  assert.equal(cut?.lost, 0, 'no loss reported: the spool was never full');
});

test('a spool too small for the cut drops its oldest records, and the tower is told how many', async () => {
  const before = (await t.seqs()).at(-1) as number;
  const from = Number(readFileSync(`${t.dir}/state/seq`, 'utf8')); // this life's first seq
  const node = t.startNode(['--spool-max', '0.05', '--metrics-listen', '127.0.0.1:9108']); // 50 KiB: a few seconds of this load
  const metrics = async () => {
    const m = await scrapeIn(t.lab, t.n1, 9108);
    return (name: string) => sample(m, `tacmesh_node_${name}`);
  };
  await waitFor('the restarted node reporting', async () =>
    ((await t.seqs()).at(-1) as number) > before ? true : undefined,
  );
  const load = t.load(RPS, '/small');
  await sleep(2000);
  await t.mgmtLink('down');
  await sleep(15_000);
  const during = await metrics();
  await t.mgmtLink('up');
  // Until the spool has drained (no record can be dropped after that), then a stats record
  // made after it: that one carries the final count of lost records.
  await waitFor(
    'the spool drained after the restore',
    async () => ((await metrics())('spool_records') === 0 ? true : undefined),
    60_000,
  );
  const drained = Date.now();
  await waitFor(
    'records after the drain',
    async () => {
      const [r] = await t.query<{ n: number }>(
        `SELECT count(*)::DOUBLE AS n FROM monitor_stats WHERE node = 'node1' AND time_ms > ${drained + 1000}`,
      );
      return (r?.n ?? 0) > 0 ? true : undefined;
    },
    30_000,
  );
  const afterwards = await metrics();
  load.kill('SIGTERM');
  node.child.kill('SIGTERM');
  await node.exited;
  const seqs = (await t.seqs()).filter((s) => s >= from);
  const last = seqs.at(-1) as number;
  const missing = last - from + 1 - seqs.length;
  const [r] = await t.query<{ lost: number }>(
    `SELECT max(records_lost)::DOUBLE AS lost FROM monitor_stats WHERE node = 'node1'`,
  );
  console.log(JSON.stringify({ from, last, stored: seqs.length, missing, reported: r?.lost }));
  assert.equal(new Set(seqs).size, seqs.length, 'no record stored twice');
  assert.equal(seqs[0], from, 'from the first record of this life');
  assert.ok(missing > 0, 'the spool was too small: records went');
  assert.equal(r?.lost, missing, 'the node reported exactly what the tower lacks');
  // The node's metrics told the same story.
  const m = {
    duringLag: during('export_lag_seconds'),
    duringSpool: during('spool_records'),
    duringBytes: during('spool_bytes'),
    lost: afterwards('spool_lost_records_total'),
    reconnects: afterwards('tower_reconnects_total'),
    resent: afterwards('records_resent_total'),
    lagAfter: afterwards('export_lag_seconds'),
  };
  console.log(JSON.stringify(m));
  assert.ok(m.duringLag >= 5, 'the export lag grew during the cut');
  assert.ok(
    m.duringSpool > 0 && m.duringBytes <= 0.05 * 1024 * 1024 * 1.1,
    'the spool held records, within its bound',
  );
  assert.equal(m.lost, missing, 'spool_lost_records_total');
  assert.ok(m.reconnects >= 1, 'the reconnect was counted');
  assert.ok(m.resent > 0, 'the backlog was resent');
  assert.ok(m.lagAfter < 3, 'and the lag went back down');
});
