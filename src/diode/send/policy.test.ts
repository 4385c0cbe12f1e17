import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Importance } from '../protocol/frame.js';
import { CopyPolicy } from './copies.js';
import { extraDelayMs, ReadThrottle, th2For, windowFor, windowThroughput } from './throttle.js';

test('copy policy: more copies the more buffer is free, TCP 0-2 and UDP 0-1 by default', () => {
  const p = new CopyPolicy();
  const at = (i: Importance) => [1, 0.8, 0.6, 0.4, 0].map((free) => p.copies(i, free));
  assert.deepEqual(at(Importance.High), [2, 2, 1, 0, 0]);
  assert.deepEqual(at(Importance.Low), [1, 1, 0, 0, 0]);
  assert.equal(p.maxCopies(), 2);
});

test("throughput control: the paper's example, and a throttle that holds its rate", () => {
  // 64 KiB window, 20 ms RTT: about 25 Mbit/s; 80 ms more gives 5 Mbit/s, or a 13,107-byte window.
  assert.ok(Math.abs(windowThroughput(65536, 20) - 26.2e6) < 0.1e6);
  assert.ok(Math.abs(extraDelayMs(65536, 5e6, 20) - 84.9) < 0.1);
  assert.ok(Math.abs(windowFor(5e6, 20) - 12500) < 1);
  assert.equal(extraDelayMs(1000, 100e6, 20), 0, 'only ever lowers throughput');
  let now = 0;
  const t = new ReadThrottle(8e6, 16384, () => now); // 1 MB/s
  let read = 0;
  while (now < 10_000) {
    read += 65536;
    now += t.take(65536);
  }
  assert.ok(Math.abs(read / 10 - 1e6) / 1e6 < 0.01, `${read / 10} bytes/s`);
  const rules = [
    { match: { service: 'a', srcPort: 5 }, mbit: 1 },
    { match: { service: 'a' }, mbit: 2 },
  ];
  const key = { service: 'a', srcIp: '1.1.1.1', srcPort: 6, dstIp: '2.2.2.2', dstPort: 7 };
  assert.equal(th2For(rules, key), 2e6);
  assert.equal(th2For(rules, { ...key, srcPort: 5 }), 1e6);
  assert.equal(th2For(rules, { ...key, service: 'b' }), undefined);
});
