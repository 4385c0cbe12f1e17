/**
 * The TCP spools on both sides and the pieces of the carousel they use, without a link:
 * acceptance and recovery, rounds, origins, and a full disk (a real tmpfs) that refuses a
 * session and leaves what was stored intact.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { run } from '../shared/exec.js';
import { fewestRounds, roundsFinished } from './carousel.js';
import { decodeOpen } from './frame.js';
import { encodeRoundOpen, originId, roundOf } from './session-origin.js';
import { SessionStore } from './session-store.js';
import { SpoolFullError } from './spool.js';
import { DeliveredOrigins, ReceiverSpool } from './tcp-spool.js';

const dir = mkdtempSync(join(tmpdir(), 'tacmesh-session-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const open = {
  service: 'db',
  destination: { host: '10.77.0.9', port: 5432 },
  client: { address: '10.77.0.1', port: 40000 },
};
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('carousel: rounds or a duration, fewest rounds first', () => {
  assert.equal(roundsFinished({ rounds: 2 }, { roundsDone: 1, startedAt: 0 }), false);
  assert.equal(roundsFinished({ rounds: 2 }, { roundsDone: 2, startedAt: 0 }), true);
  assert.equal(roundsFinished({ rounds: 1, durationMs: 1000 }, { roundsDone: 0, startedAt: 0 }, 5000), false);
  assert.equal(roundsFinished({ rounds: 1, durationMs: 1000 }, { roundsDone: 3, startedAt: 0 }, 999), false);
  assert.equal(roundsFinished({ rounds: 1, durationMs: 1000 }, { roundsDone: 3, startedAt: 0 }, 1000), true);
  const items = [
    { n: 'old', roundsDone: 2 },
    { n: 'a', roundsDone: 1 },
    { n: 'b', roundsDone: 1 },
  ];
  assert.equal(fewestRounds(items, (i) => ({ roundsDone: i.roundsDone, startedAt: 0 }))?.n, 'a');
  assert.equal(
    fewestRounds([], () => ({ roundsDone: 0, startedAt: 0 })),
    undefined,
  );
});

test('origin and round travel in the open frame; anything else is not an origin', () => {
  const origin = originId(0x6a3c1f20, 7);
  assert.equal(origin, '6a3c1f20-7');
  const decoded = decodeOpen(encodeRoundOpen(open, { origin, round: 3 }));
  assert.deepEqual(decoded?.destination, open.destination);
  assert.deepEqual(decoded && roundOf(decoded), { origin, round: 3 });
  assert.equal(roundOf(open), undefined, 'a session not from a spool');
  assert.equal(roundOf({ ...open, origin: '../../etc', round: 0 } as never), undefined);
  assert.equal(roundOf({ ...open, origin, round: 'x' } as never), undefined);
});

test('sender spool: a session is accepted with its bytes and hash; one never accepted is gone after a restart', () => {
  const store = new SessionStore(join(dir, 'send'));
  const data = Buffer.from('x'.repeat(100_000));
  const w = store.open('1-1', open, 1000);
  w.append(data.subarray(0, 40_000));
  w.append(data.subarray(40_000));
  const accepted = w.accept();
  assert.equal(accepted.meta.bytes, data.length);
  assert.equal(accepted.meta.sha256, sha(data));
  store.open('1-2', open, 2000).append(Buffer.from('never closed'));
  accepted.progress.roundsDone = 1;
  store.saveProgress(accepted);

  const again = new SessionStore(join(dir, 'send')).accepted();
  assert.equal(again.length, 1, 'only the accepted session is left');
  assert.equal(again[0]?.meta.origin, '1-1');
  assert.equal(again[0]?.progress.roundsDone, 1);
  assert.deepEqual(readFileSync(again[0]!.data), data);
  assert.ok(!existsSync(join(dir, 'send', '1-2')));
  store.remove(again[0]!);
  assert.deepEqual(readdirSync(join(dir, 'send')), []);
});

test('receiver spool: sessions held complete come back after a restart, incomplete ones do not', () => {
  const spool = new ReceiverSpool(join(dir, 'recv'));
  const a = spool.create(0x10, 1, open);
  a.append(Buffer.from('hello '));
  a.append(Buffer.from('world'));
  a.markComplete();
  assert.deepEqual(a.read(6, 100), Buffer.from('world'));
  a.release();
  const b = spool.create(0x10, 2, open);
  b.append(Buffer.from('cut'));
  b.release();
  const held = new ReceiverSpool(join(dir, 'recv')).recover();
  assert.equal(held.length, 1);
  assert.equal(held[0]?.session, 1);
  assert.equal(held[0]?.epoch, 0x10);
  assert.deepEqual(held[0]?.complete, { bytes: 11, sha256: sha(Buffer.from('hello world')) });
  assert.deepEqual(held[0]?.read(0, 100), Buffer.from('hello world'));
  held[0]?.remove();
  assert.deepEqual(readdirSync(join(dir, 'recv')), []);
});

test('delivered origins are remembered across restarts, and forgotten after their time', () => {
  const file = join(dir, 'state', 'tcp-delivered');
  const d = new DeliveredOrigins(file, 60_000, 1_000_000);
  d.add('a-1', 1_000_000);
  d.add('a-2', 1_050_000);
  assert.ok(new DeliveredOrigins(file, 60_000, 1_055_000).has('a-1'));
  const later = new DeliveredOrigins(file, 60_000, 1_070_000);
  assert.equal(later.has('a-1'), false);
  assert.equal(later.has('a-2'), true);
  assert.equal(readFileSync(file, 'utf8'), 'a-2 1050000\n', 'compacted');
});

test('a full disk refuses the session being stored and leaves the stored ones intact (tmpfs)', async () => {
  const mnt = join(dir, 'full');
  mkdirSync(mnt);
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tacmesh-session-test', mnt]);
  try {
    const store = new SessionStore(join(mnt, 'send'));
    const kept = Buffer.alloc(300_000, 7);
    const w = store.open('2-1', open, 1);
    w.append(kept);
    w.accept();
    const big = store.open('2-2', open, 2);
    assert.throws(() => {
      for (let i = 0; i < 20; i++) big.append(Buffer.alloc(100_000, 1));
    }, SpoolFullError);
    big.discard();
    const spool = new ReceiverSpool(join(mnt, 'recv'));
    const held = spool.create(3, 1, open);
    assert.throws(() => {
      for (let i = 0; i < 20; i++) held.append(Buffer.alloc(100_000, 2));
    }, SpoolFullError);
    held.remove();
    const left = store.accepted();
    assert.deepEqual(
      left.map((s) => s.meta.origin),
      ['2-1'],
    );
    assert.equal(left[0]?.meta.sha256, sha(kept));
    assert.deepEqual(readFileSync(left[0]!.data), kept, 'what was stored is intact');
  } finally {
    await run('umount', [mnt]).catch(() => run('umount', ['-l', mnt]));
  }
});
