import assert from 'node:assert/strict';
import { test } from 'node:test';
import { byLabel, Metrics, one } from './metrics.js';

test('metrics: counters and gauges from a snapshot, in the Prometheus text format', async () => {
  let snap = { frames: 10, auth: { 'bad-tag': 3, 'unknown-key': 0 }, spare: null as number | null };
  const m = new Metrics(
    'receiver',
    [
      { name: 'frames_total', help: 'frames', type: 'counter', samples: (s) => one(s.frames) },
      {
        name: 'auth_failures_total',
        help: 'auth',
        type: 'counter',
        labelNames: ['reason'],
        samples: (s) => byLabel('reason', s.auth),
      },
      { name: 'fec_min_spare', help: 'spare', type: 'gauge', samples: (s) => one(s.spare) },
    ],
    () => snap,
  );
  await m.listen({ host: '127.0.0.1', port: 0 });
  try {
    let text = await m.text();
    assert.match(text, /tacmesh_diode_frames_total\{role="receiver"\} 10/);
    assert.match(text, /tacmesh_diode_auth_failures_total\{reason="bad-tag",role="receiver"\} 3/);
    snap = { frames: 12, auth: { 'bad-tag': 5, 'unknown-key': 1 }, spare: 4 };
    text = await m.text();
    assert.match(text, /tacmesh_diode_frames_total\{role="receiver"\} 12/);
    assert.match(text, /tacmesh_diode_fec_min_spare\{role="receiver"\} 4/);
  } finally {
    m.close();
  }
});
