/**
 * Power loss on the node: what a power cut can leave of the state files (an empty file, a
 * file holding an older version) must neither stop the node nor make it reuse a seq the
 * tower already holds, which the tower would drop as a resend. A real tower (this process,
 * loopback) stores the records; the node's link is fed stats records whose packets_seen is
 * a marker, so every record the tower kept can be named. Each life spools its records before
 * the link comes up (a node restarted while the tower is away), so their seqs come from the
 * node's own state files alone. One node name per test: the tower's memory of one node.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { benchStats } from '../../../bench/tower/records.js';
import { waitFor } from '../../../test/support/wait.js';
import { initCa, issue, pkiPaths } from '../../pki/ca.js';
import { createToken } from '../../tower/api/tokens.js';
import { Tower } from '../../tower/tower.js';
import { StateStore } from '../agent/state.js';
import type { MonitorStats } from '../monitor/records.js';
import { SeqAllocator } from './seq.js';
import { TowerLink } from './tower-client.js';

const NODES = ['n1', 'n2', 'n3', 'n4'];
const dir = mkdtempSync(join(tmpdir(), 'tacmesh-power-loss-'));
const pki = join(dir, 'pki');
let tower: Tower;

before(async () => {
  await initCa(pki);
  await issue(pki, 'tower', 'tower', { altNames: ['127.0.0.1'] });
  for (const n of NODES) await issue(pki, 'node', n);
  createToken(join(dir, 'tokens.yaml'), 'op', 'operator');
  tower = await Tower.start({
    control: { listen: '127.0.0.1:0' },
    api: { listen: '127.0.0.1:0' },
    pki: { dir: pki, name: 'tower' },
    store: { path: join(dir, 'tower.duckdb'), retentionDays: 7, rollupRetentionDays: 90 },
    tokens: join(dir, 'tokens.yaml'),
  });
});
after(async () => {
  await tower?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const stats = (node: string, marker: number): MonitorStats => ({
  ...benchStats(),
  node,
  packetsSeen: marker,
});

/** One life of `node` on `state`: `markers` spooled, the link started, each acknowledged. */
async function life(node: string, state: string, markers: number[]): Promise<{ seqs: number[] }> {
  const paths = pkiPaths(pki);
  const seq = new SeqAllocator(state);
  const link = new TowerLink(
    {
      node,
      tower: `127.0.0.1:${tower.controlPort}`,
      tls: { caCert: paths.caCert, cert: paths.cert(node), key: paths.key(node) },
      hello: () => ({ subnets: [], slices: [], position: null }),
      onMonitorConfig: () => undefined,
      spool: { dir: join(state, 'spool') },
    },
    seq,
  );
  try {
    const seqs: number[] = [];
    for (const m of markers) {
      link.stats(stats(node, m));
      seqs.push(seq.last);
    }
    await link.start();
    await waitFor('the tower acknowledging the last seq', async () =>
      link.spool.acked >= seq.last ? true : undefined,
    );
    return { seqs };
  } finally {
    await link.stop();
  }
}

/** What the tower stored for `node`: packets_seen marker by seq. */
async function stored(node: string): Promise<Map<number, number>> {
  const reader = await tower.store.reader.runAndReadAll(
    `SELECT seq::DOUBLE AS seq, packets_seen::DOUBLE AS marker FROM monitor_stats WHERE node = '${node}'`,
  );
  const rows = reader.getRowObjectsJS() as { seq: number; marker: number }[];
  return new Map(rows.map((r) => [r.seq, r.marker]));
}

/** Every marker of `markers` is stored, under the seqs that life gave them. */
async function assertKept(node: string, markers: number[], seqs: number[], what: string): Promise<void> {
  const have = await stored(node);
  const kept = markers.filter((m, i) => have.get(seqs[i] as number) === m);
  assert.deepEqual(kept, markers, `${what}: the tower keeps every new record (seqs ${seqs.join(', ')})`);
}

let marker = 1000;
const batch = (n: number) => Array.from({ length: n }, () => marker++);

test('a seq file reverted to an older reservation: the node reuses no seq, the tower keeps every new record', async () => {
  const state = join(dir, 'reverted-seq');
  await life('n1', state, batch(3));
  // The reservation this second life starts from: what the file held before its rename.
  const older = readFileSync(join(state, 'seq'));
  const second = batch(3);
  const b = await life('n1', state, second);
  await assertKept('n1', second, b.seqs, 'second life');
  writeFileSync(join(state, 'seq'), older); // the power cut: the newer reservation never reached the disk
  const third = batch(3);
  const c = await life('n1', state, third);
  await assertKept('n1', third, c.seqs, 'after the revert');
  assert.ok(
    (c.seqs[0] as number) > (b.seqs.at(-1) as number),
    `the third life starts after the second's last seq (${c.seqs[0]} > ${b.seqs.at(-1)})`,
  );
});

test('a zero-length seq file: the node starts, reuses no seq, the tower keeps every new record', async () => {
  const state = join(dir, 'empty-seq');
  const a = await life('n2', state, batch(2));
  writeFileSync(join(state, 'seq'), '');
  const next = batch(3);
  const b = await life('n2', state, next);
  assert.ok((b.seqs[0] as number) > (a.seqs.at(-1) as number), 'seqs go on after the last one used');
  await assertKept('n2', next, b.seqs, 'after the empty seq file');
});

test('a zero-length or reverted spool state.json: the node starts, the tower keeps every new record', async () => {
  const state = join(dir, 'spool-state');
  await life('n3', state, batch(2));
  const stateFile = join(state, 'spool', 'state.json');
  const older = readFileSync(stateFile);
  const second = batch(2);
  await life('n3', state, second);
  writeFileSync(stateFile, older); // reverted: an older acknowledged cursor
  const third = batch(2);
  const c = await life('n3', state, third);
  await assertKept('n3', third, c.seqs, 'after the reverted state.json');
  writeFileSync(stateFile, '');
  const fourth = batch(2);
  const d = await life('n3', state, fourth);
  assert.ok((d.seqs[0] as number) > (c.seqs.at(-1) as number), 'seqs go on after the last one used');
  await assertKept('n3', fourth, d.seqs, 'after the empty state.json');
  // Nothing older was lost either: every marker of every life is stored exactly once.
  const markers = [...(await stored('n3')).values()];
  assert.equal(new Set(markers).size, markers.length, 'no record stored twice');
});

test('zero-length seq and state.json and held events together (a cut right after creating them)', async () => {
  const state = join(dir, 'all-empty');
  const a = await life('n4', state, batch(2));
  for (const f of ['seq', 'spool/state.json']) writeFileSync(join(state, f), '');
  writeFileSync(join(state, 'spool', 'held-events'), '');
  const next = batch(2);
  const b = await life('n4', state, next);
  assert.ok((b.seqs[0] as number) > (a.seqs.at(-1) as number), 'seqs go on after the last one used');
  await assertKept('n4', next, b.seqs, 'after the empty files');
});

test('a zero-length agent state file reads as "not applied": status and apply go on', () => {
  const store = new StateStore(join(dir, 'agent'));
  mkdirSync(store.dir, { recursive: true });
  writeFileSync(join(store.dir, 'n1.json'), '');
  assert.equal(store.load('n1'), undefined);
  assert.throws(() => store.pick('n1'), /node n1 was not applied here/);
});
