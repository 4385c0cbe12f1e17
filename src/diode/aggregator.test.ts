import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Aggregator } from './aggregator.js';
import { CopyPolicy } from './copies.js';
import { FrameType, Importance } from './frame.js';

test('every caller of flushed() is told when the queue has run dry, not only the last one', async () => {
  let sent = 0;
  const agg = new Aggregator({
    epoch: 1,
    rateBitsPerSecond: 20e6,
    datagramBytes: 1472,
    queueBytes: 1 << 22,
    copyPolicy: new CopyPolicy({ high: [], low: [] }),
    everyMs: 10,
    spreadMs: 2,
    send: () => sent++,
  });
  try {
    for (let i = 0; i < 100; i++)
      agg.submit({
        type: FrameType.Data,
        importance: Importance.High,
        session: 1,
        seq: i + 1,
        payload: Buffer.alloc(1000),
      });
    const flushes = [agg.flushed(), agg.flushed(), agg.flushed()].map((f) => f.then(() => sent));
    const timeout = new Promise<string>((r) => setTimeout(() => r('timeout'), 10_000).unref());
    const seen = await Promise.race([Promise.all(flushes), timeout]);
    assert.deepEqual(seen, [100, 100, 100]);
  } finally {
    agg.close();
  }
});
