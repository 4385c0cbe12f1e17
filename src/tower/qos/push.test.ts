/**
 * From the tower to the kernel: a policy set at the tower is pushed over the control plane
 * and enforced on the node (the receiver sees the new DSCP); a policy the tower
 * finds wrong is refused with the reason and audited, one the node cannot apply is refused
 * there and reported back — either way the old policy stays in force.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dscpReceiver, RECEIVER } from '../../../test/support/qos-link.js';
import { NODE, QosRig } from '../../../test/support/qos-rig.js';
import { Tool, toolPath } from '../../../test/support/tools/index.js';

const waitFor = async (pred: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  return pred();
};

test('a policy set at the tower is enforced on the node; bad policies are refused and the old one stays', async () => {
  const rig = new QosRig();
  try {
    await rig.start();
    const rx = await dscpReceiver(rig.lab, rig.link.b, 5320);
    const policy = (dscp: number, guaranteedBps = 2_000_000) => ({
      classes: [
        { name: 'c2', priority: 0, guaranteedBps, dscp },
        { name: 'bulk', priority: 7, guaranteedBps: 1_000_000, dscp: 8 },
      ],
      rules: [{ name: 'c2-udp', class: 'c2', protocol: 17, dstPorts: [5320, 5320] }],
      links: rig.links(),
    });
    const v1 = await rig.tower.qos.set('op', policy(46));
    assert.ok(v1.ok, JSON.stringify(v1));
    assert.ok(await rig.tower.qos.settled(v1.version!, 15_000), 'the node did not apply the first policy');

    const sender = new Tool(
      rig.lab.spawnNode(rig.link.h, toolPath('udp'), ['send', RECEIVER, '5320', '4000', '200', '500']),
    );
    assert.ok(await waitFor(() => rx.seen.length > 20, 5000), 'no datagrams arrived');
    assert.deepEqual([...new Set(rx.seen.slice(-10).map((s) => s.dscp))], [46]);

    const t0 = Date.now();
    const v2 = await rig.tower.qos.set('op', policy(34));
    assert.ok(v2.ok);
    // A liveness bound: the time it took is printed, and measured in bench/qos.
    assert.ok(
      await waitFor(() => rx.seen.some((s) => s.dscp === 34 && s.ms >= t0), 10_000),
      'DSCP 34 never seen at the receiver',
    );
    const took = Math.min(...rx.seen.filter((s) => s.dscp === 34).map((s) => s.ms)) - t0;
    console.log(
      `tower set → node applied → first datagram with the new DSCP at the receiver: ${took.toFixed(0)} ms`,
    );

    // refused by the tower: guarantees above the link's rate
    const bad = await rig.tower.qos.set('op', policy(10, 9_000_000));
    assert.equal(bad.ok, false);
    assert.match(
      bad.errors?.join('\n') ?? '',
      /link node1\/\S+: the classes' guarantees add up to 10 Mbit\/s, above the link's rate of 9.5 Mbit\/s/,
    );
    // refused by the node: the tower cannot know the node has no such interface
    const v3 = await rig.tower.qos.set('op', {
      ...policy(10),
      links: [...rig.links(), { node: NODE, iface: 'nosuch0', rateBps: 9_500_000 }],
    });
    assert.ok(v3.ok);
    assert.ok(await rig.tower.qos.settled(v3.version!, 15_000));
    const state = rig.tower.qos.nodes.get(NODE);
    assert.equal(state?.applied, v2.version);
    assert.equal(state?.refused?.version, v3.version);
    assert.match(state?.refused?.error ?? '', /nosuch0/);

    const before = rx.seen.length;
    assert.ok(await waitFor(() => rx.seen.length > before + 20, 3000));
    assert.deepEqual(
      [...new Set(rx.seen.slice(before).map((s) => s.dscp))],
      [34],
      'the old policy is no longer in force',
    );

    const audit = await rig.tower.qos.auditLog();
    assert.deepEqual(audit.map((a) => [a.who, a.action, a.version]).reverse(), [
      ['op', 'set', 1],
      ['op', 'set', 2],
      ['op', 'refused', 2],
      ['op', 'set', 3],
    ]);
    assert.match(audit[1]?.summary ?? '', /guarantees add up to 10 Mbit\/s/);
    assert.match(audit[2]?.summary ?? '', /classes changed: c2/);
    await sender.result();
  } finally {
    await rig.stop();
  }
});
