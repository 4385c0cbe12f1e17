/**
 * The receiver's TCP spool without a link: sessions held complete survive a restart, delivered
 * origins are remembered for their time, and a full disk (a real tmpfs) refuses the session
 * being held and leaves the others intact.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { withTmpfs } from '../../../test/support/tmpfs.js';
import { SpoolFullError } from '../disk.js';
import { DeliveredOrigins, ReceiverSpool } from './tcp-spool.js';

/** What the sender's open frame said of the session. */
const open = {
  service: 'db',
  destination: { host: '10.77.0.9', port: 5432 },
  client: { address: '10.77.0.1', port: 1 },
};
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const dir = mkdtempSync(join(tmpdir(), 'tacmesh-tcp-spool-'));
after(() => rmSync(dir, { recursive: true, force: true }));

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

test('a full disk refuses the session being held and leaves the held ones intact (tmpfs)', async () => {
  const mnt = join(dir, 'full');
  await withTmpfs(mnt, '1m', () => {
    const spool = new ReceiverSpool(join(mnt, 'recv'));
    const kept = Buffer.alloc(300_000, 7);
    const done = spool.create(3, 1, open);
    done.append(kept);
    done.markComplete();
    done.release();
    const held = spool.create(3, 2, open);
    assert.throws(() => {
      for (let i = 0; i < 20; i++) held.append(Buffer.alloc(100_000, 2));
    }, SpoolFullError);
    held.remove();
    const left = new ReceiverSpool(join(mnt, 'recv')).recover();
    try {
      assert.deepEqual(
        left.map((h) => h.session),
        [1],
      );
      assert.deepEqual(left[0]?.complete, { bytes: kept.length, sha256: sha(kept) });
      assert.deepEqual(left[0]?.read(0, kept.length), kept, 'what was held is intact');
    } finally {
      for (const h of left) h.release();
    }
  });
});
