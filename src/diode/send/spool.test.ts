/**
 * The sender's file spool after a power cut or a bad disk: a zero-length manifest or progress
 * file, a data file shorter than its manifest, a reverted or empty epoch file. The send loop
 * must quarantine what cannot be sent and go on with the rest — then and after a restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { testAggregator } from '../../../test/support/diode/aggregator.js';
import { AuditLog } from '../audit.js';
import { FrameType } from '../protocol/frame.js';
import { Carousel } from './carousel.js';
import { FileSender } from './files.js';
import { nextEpoch } from './sender.js';
import { FileSpool } from './spool.js';

/** A file sender on `dir`'s spool whose link is a list of the files it sent a round of. */
function sender(dir: string) {
  const ended = new Set<number>();
  const aggregator = testAggregator((header) => {
    if (header[3] === FrameType.FileEnd) ended.add(header.readUInt32BE(16));
  });
  const audit = new AuditLog(join(dir, 'audit.jsonl'), 'sender');
  const spool = new FileSpool(dir, aggregator.maxPayload, (q) => audit.write('file-quarantined', q));
  const files = new FileSender(aggregator, spool, new Carousel({ rounds: 1 }), audit, {
    manifestEvery: 512,
    progressEveryMs: 1000,
  });
  return {
    spool,
    ended,
    files,
    async until(done: () => boolean) {
      files.start();
      for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
    },
    close() {
      files.stop();
      aggregator.close();
    },
  };
}

test('zero-length and short spool files are quarantined and the send loop goes on, also after a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-spool-'));
  try {
    const src = (name: string, bytes: number) => {
      const p = join(dir, name);
      writeFileSync(p, Buffer.alloc(bytes, name));
      return p;
    };
    const first = sender(dir);
    // Oldest first: the short one is picked before the good one.
    const short = await first.spool.accept(src('short.bin', 100_000));
    const noManifest = await first.spool.accept(src('no-manifest.bin', 5000));
    const resumed = await first.spool.accept(src('resumed.bin', 50_000));
    const good = await first.spool.accept(src('good.bin', 20_000));
    first.close();
    const files = join(dir, 'files');
    truncateSync(join(files, String(short.id), 'data'), 4096); // the disk lost the tail
    writeFileSync(join(files, String(noManifest.id), 'manifest.json'), ''); // a power cut
    writeFileSync(join(files, String(resumed.id), 'progress.json'), ''); // a power cut

    const second = sender(dir);
    await second.until(() => second.ended.has(good.id) && second.ended.has(resumed.id));
    second.close();
    assert.ok(second.ended.has(good.id), 'the good file was sent');
    assert.ok(second.ended.has(resumed.id), 'the file whose progress was lost was sent from its start');
    assert.ok(!second.ended.has(short.id));
    const quarantined = readdirSync(join(dir, 'quarantine')).sort();
    assert.deepEqual(quarantined, [String(short.id), String(noManifest.id)].sort());
    const error = JSON.parse(readFileSync(join(dir, 'quarantine', String(short.id), 'error.json'), 'utf8'));
    assert.match(error.error, /4096 bytes, the manifest says 100000/);
    const audit = readFileSync(join(dir, 'audit.jsonl'), 'utf8');
    assert.equal(audit.match(/"event":"file-quarantined"/g)?.length, 2);

    // After a restart: nothing left to trip on, and a new file goes out.
    const third = sender(dir);
    const later = await third.spool.accept(src('later.bin', 3000));
    await third.until(() => third.ended.has(later.id));
    third.close();
    assert.ok(third.ended.has(later.id));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an empty or reverted epoch file does not stop the sender: the next epoch is from the clock, written whole', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-epoch-'));
  try {
    const a = nextEpoch(dir);
    const b = nextEpoch(dir);
    assert.ok(b > a);
    writeFileSync(join(dir, 'epoch'), ''); // a power cut
    const c = nextEpoch(dir);
    assert.ok(c >= Math.floor(Date.now() / 1000), 'from the clock');
    writeFileSync(join(dir, 'epoch'), `${a}\n`); // reverted
    const d = nextEpoch(dir);
    assert.ok(d > a && d >= Math.floor(Date.now() / 1000));
    assert.match(readFileSync(join(dir, 'epoch'), 'utf8'), /^\d+\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
