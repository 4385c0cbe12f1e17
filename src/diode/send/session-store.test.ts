/**
 * The sender's TCP spool and the pieces of the carousel it uses, without a link: acceptance
 * and recovery, rounds, origins, and a full disk (a real tmpfs) that refuses a session and
 * leaves what was stored intact. The receiver's spool: receive/tcp-spool.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { withTmpfs } from '../../../test/support/tmpfs.js';
import { SpoolFullError } from '../disk.js';
import { decodeOpen } from '../protocol/frame.js';
import { encodeRoundOpen, originId, roundOf } from '../protocol/session-origin.js';
import { fewestRounds, roundsFinished } from './carousel.js';
import { SessionStore } from './session-store.js';

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

test('a full disk refuses the session being stored and leaves the stored ones intact (tmpfs)', async () => {
  const mnt = join(dir, 'full');
  await withTmpfs(mnt, '1m', () => {
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
    const left = store.accepted();
    assert.deepEqual(
      left.map((s) => s.meta.origin),
      ['2-1'],
    );
    assert.equal(left[0]?.meta.sha256, sha(kept));
    assert.deepEqual(readFileSync(left[0]!.data), kept, 'what was stored is intact');
  });
});
