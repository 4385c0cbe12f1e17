/**
 * The closed loop end to end. The radio behind the node falls to 5 Mbit/s while the policy
 * still names 9.5: HTB is no longer the bottleneck, so when bulk saturates, the C2 flow
 * loses at the radio despite its guarantee. The tower sees the link congested in the node's
 * counters, lowers bulk's ceiling (audited as "auto"), C2 stops losing; when bulk stops,
 * the tower lifts the limit. C2's loss is counted from the gaps in its sequence numbers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dscpReceiver, iperfServer, lostAmong, pacedUdp, RECEIVER } from '../../../test/support/qos-link.js';
import { QosRig } from '../../../test/support/qos-rig.js';
import { sleep, waitFor } from '../../../test/support/wait.js';
import { stopChild } from '../../netlab/lab.js';
import { limitRate } from '../../netlab/link.js';
import { run } from '../../shared/exec.js';

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
    assert.ok(set.ok && (await rig.tower.qos.settled(set.version!, 15_000)));

    const t0 = Date.now();
    // Both flows run until stopped: the test waits for the loop, however long it takes here.
    const c2 = pacedUdp(rig.lab, rig.link.h, PORT, PPS, 300, SIZE);
    await sleep(2000);
    const bulkStart = Date.now();
    const bulk = rig.lab.spawn(
      rig.link.h,
      'iperf3',
      [...['-c', RECEIVER, '-p', '5331', '-u', '-b', '30M', '-l', '1200', '-t', '300']],
      { stdio: 'ignore' },
    );
    const audited = (action: string) => async () =>
      (await rig.tower.qos.auditLog()).find((a) => a.action === action);
    const lowered = await waitFor('the loop lowering a ceiling', audited('auto-lower'), 60_000);
    await sleep(4000); // C2 after the loop acted
    const bulkEnd = Date.now();
    await stopChild(bulk);
    const restored = await waitFor('the loop lifting the limit', audited('auto-restore'), 60_000);
    await stopChild(c2);

    const rel = (t: number) => `${((t - t0) / 1000).toFixed(1)} s`;
    console.log(
      `bulk ${rel(bulkStart)}–${rel(bulkEnd)}; lowered at ${rel(lowered.timeMs)} (${lowered.summary}); restored at ${rel(restored.timeMs)}`,
    );
    assert.equal(lowered.who, 'auto');
    assert.ok(lowered.timeMs > bulkStart, 'lowered in answer to the congestion, not before it');
    const share = ({ lost, received }: { lost: number; received: number }) => lost / (lost + received || 1);
    const before = lostAmong(rx.seen, bulkStart + 300, lowered.timeMs);
    const after = lostAmong(rx.seen, lowered.timeMs + 1000, bulkEnd);
    console.log(
      `C2 (${C2_MBIT} Mbit/s offered) lost ${(share(before) * 100).toFixed(1)} % congested, ${(share(after) * 100).toFixed(1)} % after the loop acted (${JSON.stringify({ before, after })})`,
    );
    assert.ok(
      share(before) > 0.1,
      `congestion did not hurt C2 (${JSON.stringify(before)}): the test shows nothing`,
    );
    assert.ok(share(after) < 0.05, `C2 still lost ${JSON.stringify(after)} after the loop acted`);
    assert.ok(restored.who === 'auto' && restored.timeMs > bulkEnd, 'the limit was lifted after bulk ended');
    assert.deepEqual(rig.tower.qos.policy.limits, {});
    // The node applies the lifted policy a moment after the tower audits it.
    const bulkClass = async () =>
      (await run('tc', ['-n', rig.link.a, 'class', 'show', 'dev', rig.link.uplink, 'classid', '1:fff1']))
        .stdout;
    await waitFor("bulk's ceiling back at the node", async () =>
      /ceil 9500Kbit/.test(await bulkClass()) ? true : undefined,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${await bulkClass()}`);
    });
  } finally {
    await rig.stop();
  }
});
