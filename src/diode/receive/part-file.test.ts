import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hasChunk } from './chunk-bits.js';
import { PartFile } from './part-file.js';

const CHUNK = 1000;

function part(chunks: number, onError: (err: Error) => void = () => assert.fail('no write fails')) {
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-part-'));
  const path = join(dir, 'data.part');
  const fd = openSync(path, 'w+');
  const size = chunks * CHUNK - 123;
  const data = randomBytes(size);
  const chunk = (i: number) => data.subarray(i * CHUNK, Math.min(size, (i + 1) * CHUNK));
  const p = new PartFile(fd, CHUNK, size, chunks, onError);
  return { p, path, data, chunk, close: () => rmSync(dir, { recursive: true, force: true }) };
}

const isWritten = (p: PartFile, i: number) => hasChunk(p.written, i);

test('chunks in any order reach the disk whole; what is in flight reads back from memory; written says what is on disk', async () => {
  const t = part(3000);
  try {
    const order = [...Array(3000).keys()];
    // Mostly in order, with holes filled later (FEC rebuilding a block's losses).
    const late = order.filter((i) => i % 97 === 5);
    for (const i of order.filter((i) => i % 97 !== 5)) t.p.write(i, t.chunk(i));
    assert.deepEqual(t.p.read(1234).data, t.chunk(1234), 'read back while its run is gathered or in flight');
    for (const i of late) t.p.write(i, t.chunk(i));
    assert.ok(t.p.pendingBytes > 0);
    await t.p.drained();
    assert.equal(t.p.pendingBytes, 0);
    for (let i = 0; i < 3000; i++) assert.ok(isWritten(t.p, i), `chunk ${i} on disk`);
    assert.deepEqual(t.p.read(5).data, t.chunk(5), 'read back from the disk');
    // Many at once: from chunk 90 to the end in one read, as the prefix hash asks.
    const run = t.p.read(90, 3000);
    assert.equal(run.count, 2910);
    assert.deepEqual(run.data, t.data.subarray(90 * CHUNK));
    t.p.close();
    assert.deepEqual(readFileSync(t.path), t.data);
  } finally {
    t.close();
  }
});

test('a write that fails is reported once, the file is not claimed written', async () => {
  let failures = 0;
  const t = part(10, () => failures++);
  try {
    t.p.close(); // the descriptor goes: every later write fails
    const again = new PartFile(t.p.fd, CHUNK, 10 * CHUNK, 10, () => failures++);
    again.write(0, t.chunk(0));
    await again.drained();
    assert.equal(failures, 1);
    assert.equal(again.failed?.code, 'EBADF');
    assert.equal(isWritten(again, 0), false);
  } finally {
    t.close();
  }
});
