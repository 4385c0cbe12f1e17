/**
 * The closed loop end to end. The radio behind the node falls to 5 Mbit/s while the policy
 * still names 9.5: HTB is no longer the bottleneck, so when bulk saturates, the C2 flow
 * loses at the radio despite its guarantee. The tower sees the link congested in the node's
 * counters, lowers bulk's ceiling (audited as "auto"), C2 gets its rate back; when bulk
 * stops, the tower lifts the limit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dscpReceiver, iperfServer, iperfUdp, pacedUdp } from '../../node/qos/test-link.js';
import { run } from '../../shared/exec.js';
import { limitRate } from '../../testbed/link.js';
import { QosRig } from './test-rig.js';

const PORT = 5330;
const SIZE = 1000;
const PPS = 250; // 2 Mbit/s of payload
const C2_MBIT = (PPS * SIZE * 8) / 1e6;

test('the closed loop recovers the high class after congestion starts and lifts the limit after it ends', async () => {
  const rig = new QosRig();
  try {
    await rig.start();
    await limitRate(rig.lab, rig.link.r, rig.link.radio, 5);
    await iperfServer(rig.lab, rig.link.b, 5331);
    const rx = await dscpReceiver(rig.lab, rig.link.b, PORT);
    const set = await rig.tower.qos.set('op', {
      classes: [
        { name: 'c2', priority: 0, guaranteedBps: 2_200_000, dscp: 46 },
        { name: 'bulk', priority: 7, guaranteedBps: 1_000_000, dscp: 8 },
      ],
      rules: [
        { name: 'c2', class: 'c2', protocol: 17, dstPorts: [PORT, PORT] },
        { name: 'bulk', class: 'bulk', protocol: 17, dstPorts: [5331, 5331] },
      ],
      links: rig.links(),
      auto: { enabled: true, congestedAt: 0.9, clearAt: 0.5, holdMs: 1000 },
    });
    assert.ok(set.ok && (await rig.tower.qos.settled(set.version!, 2000)));

    const t0 = Date.now();
    const c2 = pacedUdp(rig.lab, rig.link.h, PORT, PPS, 16, SIZE);
    await new Promise((r) => setTimeout(r, 2000));
    const bulkStart = Date.now();
    await iperfUdp(rig.lab, rig.link.h, 5331, 30, 8);
    const bulkEnd = Date.now();
    await new Promise((r) => c2.once('exit', r));

    const audit = (await rig.tower.qos.auditLog()).reverse();
    const lowered = audit.find((a) => a.action === 'auto-lower');
    const restored = audit.find((a) => a.action === 'auto-restore');
    const mbitIn = (from: number, to: number) =>
      (rx.seen.filter((s) => s.ms >= from && s.ms < to).length * SIZE * 8) / ((to - from) * 1000);
    const rel = (t: number | undefined) => (t === undefined ? 'never' : `${((t - t0) / 1000).toFixed(1)} s`);
    console.log(
      `bulk ${rel(bulkStart)}–${rel(bulkEnd)}; lowered at ${rel(lowered?.timeMs)} (${lowered?.summary}); restored at ${rel(restored?.timeMs)}`,
    );
    assert.ok(lowered && lowered.who === 'auto', 'the loop never lowered a ceiling');
    assert.ok(lowered.timeMs > bulkStart && lowered.timeMs < bulkEnd);
    const before = mbitIn(bulkStart + 300, lowered.timeMs);
    const after = mbitIn(lowered.timeMs + 1000, bulkEnd);
    console.log(
      `C2 (${C2_MBIT} Mbit/s offered): ${mbitIn(t0 + 200, bulkStart).toFixed(2)} before bulk, ${before.toFixed(2)} congested, ${after.toFixed(2)} after the loop acted (Mbit/s)`,
    );
    assert.ok(
      before < 0.9 * C2_MBIT,
      `congestion did not hurt C2 (${before} Mbit/s): the test shows nothing`,
    );
    assert.ok(after >= 0.95 * C2_MBIT, `C2 got ${after} Mbit/s after the loop acted`);
    assert.ok(
      restored && restored.who === 'auto' && restored.timeMs > bulkEnd,
      'the limit was not lifted after bulk ended',
    );
    assert.ok(restored.timeMs - bulkEnd < 5000);
    assert.deepEqual(rig.tower.qos.policy.limits, {});
    const { stdout } = await run('tc', [
      '-n',
      rig.link.a,
      'class',
      'show',
      'dev',
      rig.link.uplink,
      'classid',
      '1:fff1',
    ]);
    assert.match(stdout, /ceil 9500Kbit/, `bulk's ceiling is not back: ${stdout}`);
  } finally {
    await rig.stop();
  }
});
