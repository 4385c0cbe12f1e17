import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeHeartbeat, encodeHeartbeat } from './heartbeat.js';

test('heartbeats round-trip and truncate to fit', () => {
  const sessions = Array.from({ length: 300 }, (_, i) => ({
    session: i,
    lastSeq: i * 2,
    closed: i % 2 === 0,
  }));
  const full = decodeHeartbeat(
    encodeHeartbeat({ intervalMs: 1000, uptimeS: 3, datagramsSent: 10, sessions }, 9000),
  );
  assert.deepEqual(full?.sessions, sessions);
  assert.equal(full?.truncated, false);
  const cut = decodeHeartbeat(
    encodeHeartbeat({ intervalMs: 1000, uptimeS: 3, datagramsSent: 10, sessions }, 1440),
  );
  assert.ok(cut?.truncated && cut.sessions.length < 300);
  assert.equal(decodeHeartbeat(Buffer.alloc(5)), undefined);
});
