import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WIRE_OVERHEAD_BYTES } from '../protocol/frame.js';
import { Pacer } from './pacer.js';

test('setRate: the pacer sends at the new rate from then on', () => {
  let now = 0;
  let sent = 0;
  const pacer = new Pacer({ rateBitsPerSecond: 8e6, send: () => sent++, now: () => now });
  const payload = Buffer.alloc(1000 - WIRE_OVERHEAD_BYTES);
  const header = Buffer.alloc(0);
  try {
    for (let i = 0; i < 10_000; i++) pacer.enqueue({ header, payload, due: 0 });
    const run = (ms: number) => {
      const before = sent;
      for (let i = 0; i < ms; i++) {
        now += 1;
        pacer.pump();
      }
      return sent - before;
    };
    run(50); // the first burst, then the rate
    // 8 Mbit/s is 1000 bytes a ms: one datagram per ms.
    assert.equal(run(100), 100);
    pacer.setRate(16e6);
    assert.equal(run(100), 200, 'twice the rate, twice the datagrams');
  } finally {
    pacer.stop();
  }
});
