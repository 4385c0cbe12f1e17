import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { keyedDir, signed } from '../../../test/support/diode/signed.js';
import { UNCHECKED, verdictFailure } from '../protocol/auth.js';
import { encodeFrame, FrameType, Importance } from '../protocol/frame.js';
import { LinkReader } from './link-reader.js';

/** Sends `count` datagrams of `bytes` to 127.0.0.1:`port` from another thread, as fast as it can. */
function flood(port: number, count: number, bytes: number): Promise<void> {
  const code = `
    const { createSocket } = require('node:dgram');
    const { workerData: w } = require('node:worker_threads');
    const tx = createSocket('udp4');
    let sent = 0;
    const next = () => { if (sent === w.count) return tx.close(); const d = Buffer.alloc(w.bytes); d.writeUInt32BE(sent++); tx.send(d, w.port, '127.0.0.1', next); };
    next();`;
  const w = new Worker(code, { eval: true, workerData: { port, count, bytes } });
  return new Promise((resolve, reject) => {
    w.once('exit', () => resolve());
    w.once('error', reject);
  });
}

function reader(queueBytes: number, onBatch: (d: Buffer[]) => void): LinkReader {
  return new LinkReader({
    host: '127.0.0.1',
    port: 0,
    receiveBufferBytes: 8 << 20,
    maxDatagramBytes: 1500,
    queueBytes,
    onBatch,
  });
}

test('the link reader hands over datagrams in order, in batches, and counts them', async () => {
  const got: number[] = [];
  let batches = 0;
  const r = reader(64 << 20, (d) => {
    batches++;
    for (const x of d) got.push(x.readUInt32BE(0));
  });
  try {
    await r.start();
    await flood(r.port!, 2000, 1200);
    while (got.length < 2000) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(
      got,
      Array.from({ length: 2000 }, (_, i) => i),
    );
    const s = r.stats();
    assert.equal(s.datagrams, 2000);
    assert.equal(s.bytes, 2000 * 1200);
    assert.equal(s.batches, batches);
    assert.equal(s.kernelDrops + s.queueDrops, 0);
  } finally {
    r.close();
  }
});

test('while the main thread is busy the reader keeps the socket drained; beyond its queue it drops, counted', async () => {
  const got: number[] = [];
  const r = reader(1 << 20, (d) => {
    for (const x of d) got.push(x.readUInt32BE(0));
  });
  try {
    await r.start();
    const sent = flood(r.port!, 3000, 1400);
    // The main thread takes nothing until the flood is over: 4.2 MB against a 1 MiB queue.
    const until = Date.now() + 3000;
    while (Date.now() < until && r.stats().datagrams + r.stats().kernelDrops < 3000) {
      /* busy */
    }
    await sent;
    await new Promise((resolve) => setTimeout(resolve, 100));
    const s = r.stats();
    assert.equal(s.kernelDrops, 0, 'an 8 MiB socket buffer holds the flood');
    assert.ok(s.queueDrops > 0, JSON.stringify(s));
    assert.equal(got.length + s.queueDrops, 3000);
    assert.ok(got.length * 1400 <= 1 << 20, 'no more than the queue was held');
    assert.ok(s.queuePeakBytes <= 1 << 20);
    assert.deepEqual(
      got,
      [...got].sort((a, b) => a - b),
      'what was kept is in order',
    );
  } finally {
    r.close();
  }
});

test('a port in use refuses the start with its reason', async () => {
  const a = reader(1 << 20, () => undefined);
  await a.start();
  const b = new LinkReader({
    host: '127.0.0.1',
    port: a.port!,
    receiveBufferBytes: 65536,
    maxDatagramBytes: 1500,
    queueBytes: 1 << 20,
    onBatch: () => undefined,
  });
  try {
    await assert.rejects(b.start(), /Address already in use/);
  } finally {
    a.close();
    b.close();
  }
});

test('with a key file the reader checks each tag: the main thread gets a verdict per datagram', async () => {
  const k = keyedDir('tacmesh-reader-keys-');
  const verdicts: number[] = [];
  const r = new LinkReader({
    keyFile: k.keyFile,
    host: '127.0.0.1',
    port: 0,
    receiveBufferBytes: 1 << 20,
    maxDatagramBytes: 1500,
    queueBytes: 1 << 20,
    onBatch: (_d, v) => verdicts.push(...v),
  });
  try {
    await r.start();
    const good = signed(k.ring, { linkSeq: 1 }, Buffer.from('payload'));
    const flipped = Buffer.from(good);
    flipped[34]! ^= 1;
    const unsigned = encodeFrame(
      {
        type: FrameType.Data,
        flags: 0,
        importance: Importance.High,
        copy: 0,
        epoch: 1,
        linkSeq: 2,
        session: 1,
        seq: 1,
        block: 0,
        keyId: 0,
      },
      Buffer.from('payload'),
    );
    const otherKey = Buffer.from(good);
    otherKey.writeUInt16BE(7, 28);
    const tx = createSocket('udp4');
    for (const d of [good, flipped, unsigned, otherKey, Buffer.from('garbage')])
      await new Promise((resolve) => tx.send(d, r.port!, '127.0.0.1', resolve));
    tx.close();
    while (verdicts.length < 5) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(
      verdicts.map((v) => (v === UNCHECKED ? 'unchecked' : (verdictFailure(v) ?? 'passed'))),
      ['passed', 'bad-tag', 'unauthenticated', 'unknown-key', 'unchecked'],
    );
  } finally {
    r.close();
    k.close();
  }
});
