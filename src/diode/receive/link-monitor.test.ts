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
