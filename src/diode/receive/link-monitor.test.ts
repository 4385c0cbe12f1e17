import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LinkMonitor } from './link-monitor.js';

test("the link monitor: alive while heartbeats come, loss from the sender's count", () => {
  let now = 0;
  const m = new LinkMonitor(3000, () => now);
  assert.equal(m.alive(), false);
  m.heard({ intervalMs: 1000, uptimeS: 0, datagramsSent: 1000, truncated: false, sessions: [] }, 10);
  now = 1000;
  m.heard({ intervalMs: 1000, uptimeS: 1, datagramsSent: 2000, truncated: false, sessions: [] }, 960);
  assert.ok(Math.abs((m.health().datagramLoss ?? 0) - 0.05) < 1e-9);
  assert.deepEqual(
    [m.health().datagramsSent, m.health().datagramsReceived],
    [1000, 950],
    'what the loss is of',
  );
  now = 5000;
  assert.equal(m.alive(), false);
});

test('a heartbeat FEC rebuilt keeps the link alive but does not count for the loss', () => {
  let now = 0;
  const m = new LinkMonitor(3000, () => now);
  const hb = (uptimeS: number, datagramsSent: number) => ({
    intervalMs: 1000,
    uptimeS,
    datagramsSent,
    truncated: false,
    sessions: [],
  });
  m.heard(hb(0, 1000), 10);
  m.heard(hb(1, 2000), 960);
  now = 2500;
  // Rebuilt after the rest of its block arrived: 4000 datagrams counted by then, 3000 sent before it.
  m.heard(hb(2, 3000), undefined);
  assert.equal(m.alive(), true);
  assert.equal(m.health().senderUptimeS, 2);
  assert.deepEqual([m.health().datagramsSent, m.health().datagramsReceived], [1000, 950]);
});
