import assert from 'node:assert/strict';
import { test } from 'node:test';
import { testAggregator } from '../../../test/support/diode/aggregator.js';
import { FrameType, Importance } from '../protocol/frame.js';
import type { Aggregator } from './aggregator.js';
import { CopyPolicy } from './copies.js';

/** Submits `n` data frames of `bytes` each. */
function submitData(agg: Aggregator, n: number, bytes: number): void {
  for (let i = 0; i < n; i++)
    agg.submit({
      type: FrameType.Data,
      importance: Importance.High,
      session: 1,
      seq: i + 1,
      payload: Buffer.alloc(bytes),
    });
}

test('every caller of flushed() is told when the queue has run dry, not only the last one', async () => {
  let sent = 0;
  const agg = testAggregator(() => sent++, { rateBitsPerSecond: 20e6, spreadMs: 2 });
  try {
    submitData(agg, 100, 1000);
    const flushes = [agg.flushed(), agg.flushed(), agg.flushed()].map((f) => f.then(() => sent));
    const timeout = new Promise<string>((r) => setTimeout(() => r('timeout'), 10_000).unref());
    const seen = await Promise.race([Promise.all(flushes), timeout]);
    assert.deepEqual(seen, [100, 100, 100]);
  } finally {
    agg.close();
  }
});

test('a new epoch starts before the link sequence reaches its limit; sequences never wrap', async () => {
  const seen: { epoch: number; linkSeq: number }[] = [];
  const epochs = [500, 501];
  const agg = testAggregator(
    (header) => seen.push({ epoch: header.readUInt32BE(8), linkSeq: header.readUInt32BE(12) }),
    // The real limit is SEQ_LIMIT; a new epoch starts 16 frames short of this one.
    { newEpoch: () => epochs.shift()!, seqLimit: 64 },
  );
  try {
    submitData(agg, 100, 10);
    await agg.flushed();
    assert.equal(seen.length, 100);
    assert.deepEqual([...new Set(seen.map((s) => s.epoch))], [1, 500, 501]);
    assert.ok(seen.every((s) => s.linkSeq < 48));
    assert.deepEqual(seen[48], { epoch: 500, linkSeq: 0 });
    assert.equal(agg.snapshot().epochChanges, 2);
  } finally {
    agg.close();
  }
});

test("a heartbeat's count is of the datagrams sent before it, though copies go ahead of queued originals", async () => {
  const types: number[] = [];
  const agg = testAggregator((header) => types.push(header[3]!), {
    rateBitsPerSecond: 20e6,
    spreadMs: 1,
    copyPolicy: new CopyPolicy({ high: [{ freeAtLeast: 0, copies: 2 }], low: [] }),
  });
  try {
    submitData(agg, 100, 1000);
    let stamped = -1;
    agg.submitLate((datagramsSent) => {
      stamped = datagramsSent;
      return {
        type: FrameType.Heartbeat,
        importance: Importance.High,
        session: 0,
        seq: 0,
        payload: Buffer.alloc(40),
        copies: false,
      };
    }, 40);
    // Queued behind it: their copies fall due while it waits, and go first.
    const queuedAhead = agg.pending;
    submitData(agg, 100, 1000);
    await agg.flushed();
    const before = types.indexOf(FrameType.Heartbeat);
    assert.equal(stamped, before, 'the count it carries is what left before it');
    assert.notEqual(before, queuedAhead - 1, 'copies of frames queued after it went ahead of it');
  } finally {
    agg.close();
  }
});
