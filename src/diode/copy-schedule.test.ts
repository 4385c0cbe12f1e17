/** The sender's copy schedule through the receiver's duplicate filters, in process. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { filterBoth } from '../../test/support/diode/filter-both.js';
import { FrameType, Importance } from './protocol/frame.js';
import { Aggregator } from './send/aggregator.js';
import { CopyPolicy } from './send/copies.js';

test("the aggregator's own schedule (copies spread by 2 ms): window catches every copy, Algorithm 1 few", async () => {
  const sent: Buffer[] = [];
  const agg = new Aggregator({
    epoch: 9,
    rateBitsPerSecond: 50e6,
    datagramBytes: 1472,
    queueBytes: 1 << 22,
    copyPolicy: new CopyPolicy({ high: [{ freeAtLeast: 0, copies: 2 }], low: [] }),
    everyMs: 10,
    spreadMs: 2,
    send: (h, p) => sent.push(Buffer.concat([h, p])),
  });
  try {
    for (let i = 0; i < 200; i++) {
      agg.submit({
        type: FrameType.Data,
        importance: Importance.High,
        session: 1,
        seq: i,
        payload: Buffer.alloc(1000, i),
      });
    }
    await agg.flushed();
  } finally {
    agg.close();
  }
  assert.equal(sent.length, 600);
  const r = filterBoth(sent);
  assert.equal(r.byWindow, 400, 'every copy is a duplicate to the window');
  assert.ok(r.byAdjacent < 40, `Algorithm 1 caught ${r.byAdjacent} of 400`);
});
