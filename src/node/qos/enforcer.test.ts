/**
 * QoS on a 10 Mbit/s emulated link (namespaces a → radio r → b, see test/support/qos-link.ts): the
 * command-and-control class loses (almost) nothing while bulk saturates the link, counted in
 * datagrams (bench/qos measures the rates and the one-class control); the receiver sees the
 * DSCP the policy set; a new policy takes effect; a bad one is refused and the old one stays.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { testTrust } from '../../../test/support/agent-node.js';
import {
  dscpReceiver,
  iperfServer,
  iperfUdp,
  lostFraction,
  policy,
  RECEIVER,
  receivedMbit,
  udpFrame,
  withQosLink,
} from '../../../test/support/qos-link.js';
import { Tool, toolPath } from '../../../test/support/tools/index.js';
import { run } from '../../shared/exec.js';
import type { SliceConfig, UplinkConfig } from '../agent/config.js';
import { htbCommands, htbDrift, htbSpec, parseHtbClasses, parseU32Filters } from '../agent/isolation.js';
import { QosEnforcer } from './enforcer.js';

// qos.bpf.o is loaded only as a signed manifest lists it.
const trustDir = mkdtempSync(join(tmpdir(), 'tacmesh-qos-trust-'));
after(() => rmSync(trustDir, { recursive: true, force: true }));
const trust = testTrust(trustDir, ['qos']);

const C2_BPS = 2_000_000;
const UDP = 17;

const classes = [
  { name: 'c2', priority: 0, guaranteedBps: C2_BPS, ceilingBps: 9_500_000, dscp: 46 },
  { name: 'bulk', priority: 7, guaranteedBps: 1_000_000, ceilingBps: 9_500_000, dscp: 8 },
];

test('on a 10 Mbit/s link a C2 flow within its guarantee loses < 5 % while bulk saturates the link', async () => {
  await withQosLink(async (lab, link, held) => {
    await iperfServer(lab, link.b, 5301);
    await iperfServer(lab, link.b, 5302);
    held.qos = QosEnforcer.open({ netns: link.a, bpf: trust });
    // iperf3's UDP flows open with a datagram the server must answer: C2 starts first, while
    // the link is quiet; bulk joins 0.3 s later and C2's first second is left out.
    const run = async () => {
      const c2 = iperfUdp(lab, link.h, 5301, C2_BPS / 1e6, 5, 1);
      await new Promise((r) => setTimeout(r, 300));
      const bulk = await iperfUdp(lab, link.h, 5302, 30, 6);
      return { c2: await c2, bulk };
    };
    await held.qos.apply(
      policy(2, link.uplink, classes, [
        { name: 'c2', class: 'c2', protocol: UDP, dstPortMin: 5301 },
        { name: 'bulk', class: 'bulk', protocol: UDP, dstPortMin: 5302 },
      ]),
    );
    const classed = await run();
    const counts = await held.qos.counters();
    const lost = { c2: lostFraction(classed.c2), bulk: lostFraction(classed.bulk) };
    console.log(
      `C2 ${C2_BPS / 1e6} Mbit/s guaranteed: ${receivedMbit(classed.c2).toFixed(2)} Mbit/s, ${(lost.c2 * 100).toFixed(2)} % lost; bulk ${receivedMbit(classed.bulk).toFixed(2)} Mbit/s, ${(lost.bulk * 100).toFixed(1)} % lost`,
    );
    // The control: bulk offered 3x the link, so the link was full and bulk lost the excess.
    assert.ok(
      lost.bulk > 0.2,
      `bulk saturated the link and lost the excess (${(lost.bulk * 100).toFixed(1)} % lost)`,
    );
    assert.ok(lost.c2 < 0.05, `C2 lost ${(lost.c2 * 100).toFixed(2)} % of its datagrams`);
    const c2Counts = counts.classes.find((c) => c.class === 'c2');
    const bulkCounts = counts.classes.find((c) => c.class === 'bulk');
    assert.ok(
      Number(c2Counts?.bytes) > 0 && Number(bulkCounts?.bytes) > Number(c2Counts?.bytes),
      JSON.stringify(counts),
    );
    assert.equal(counts.policyVersion, 2);
  });
});

test('the receiver sees the DSCP the policy set; a new policy takes effect; a bad policy is refused and the old one stays', async () => {
  await withQosLink(async (lab, link, held) => {
    const rx = await dscpReceiver(lab, link.b, 5310);
    held.qos = QosEnforcer.open({ netns: link.a, bpf: trust });
    const rule = {
      name: 'c2',
      class: 'c2',
      protocol: UDP,
      dstPortMin: 5310,
      dstPrefixes: ['10.77.181.0/24'],
    };
    await held.qos.apply(policy(1, link.uplink, classes, [rule]));
    const sender = new Tool(
      lab.spawnNode(link.h, toolPath('udp'), ['send', RECEIVER, '5310', '3000', '200', '500']),
    );
    const waitFor = async (pred: () => boolean, ms: number) => {
      const end = Date.now() + ms;
      while (!pred() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
      return pred();
    };
    assert.ok(await waitFor(() => rx.seen.length > 20, 5000), 'no datagrams arrived');
    assert.deepEqual([...new Set(rx.seen.slice(-10).map((s) => s.dscp))], [46]);

    // voice: the same rule now puts the flow in a class marked EF → AF41 (34)
    const changed = classes.map((c) => (c.name === 'c2' ? { ...c, dscp: 34 } : c));
    const t0 = Date.now();
    await held.qos.apply(policy(2, link.uplink, changed, [rule]));
    // A liveness bound: the time it took is printed, and measured in bench/qos.
    assert.ok(
      await waitFor(() => rx.seen.some((s) => s.dscp === 34 && s.ms >= t0), 10_000),
      'DSCP 34 never seen at the receiver',
    );
    const took = Math.min(...rx.seen.filter((s) => s.dscp === 34).map((s) => s.ms)) - t0;
    console.log(`policy change → first datagram with the new DSCP at the receiver: ${took.toFixed(0)} ms`);

    // a rule naming a class the policy does not have
    await assert.rejects(
      held.qos.apply(policy(3, link.uplink, changed, [{ ...rule, class: 'video' }])),
      /rule "c2": unknown class "video"/,
    );
    assert.equal(held.qos.policy?.version, 2);
    const before = rx.seen.length;
    assert.ok(await waitFor(() => rx.seen.length > before + 20, 3000));
    assert.deepEqual([...new Set(rx.seen.slice(before).map((s) => s.dscp))], [34]);
    await sender.result();
    assert.ok(Number(held.qos.ruleCounts().get('c2')?.packets) > 0);
  });
});

test('the policer passes a burst, then drops (or re-marks) above the rate; counters per rule and class', async () => {
  await withQosLink(async (_lab, link, held) => {
    held.qos = QosEnforcer.open({ netns: link.a, bpf: trust });
    const rules = [
      { name: 'drop', class: 'bulk', protocol: UDP, dstPortMin: 6001, policeBps: 8000 },
      {
        name: 'remark',
        class: 'bulk',
        protocol: UDP,
        dstPortMin: 6002,
        policeBps: 8000,
        policeRemark: true,
        policeDscp: 1,
      },
      { name: 'plain', class: 'c2', protocol: UDP, dstPortMin: 6003 },
    ];
    await held.qos.apply(policy(1, link.uplink, classes, rules));
    const frame = udpFrame(6001, 1000);
    const burst = 2 * 65_536; // the policer's smallest bucket: two 64 KiB GSO packets
    const runs = 1000;
    const drop = held.qos.testRun(frame, runs);
    assert.equal(drop.retval, 2, 'the last packet, far above the rate, is dropped (TC_ACT_SHOT)');
    const remark = held.qos.testRun(udpFrame(6002, 1000), runs);
    assert.equal(remark.retval | 0, -1, 're-marked packets pass');
    assert.equal(held.qos.testRun(udpFrame(6003), 10).retval | 0, -1);
    const counts = held.qos.ruleCounts();
    const passed = Math.floor(burst / frame.length);
    // BPF_PROG_TEST_RUN counts each run: the bucket lets `passed` through, refills by ~nothing
    assert.ok(
      Math.abs(Number(counts.get('drop')?.drops) - (runs - passed)) <= 2,
      JSON.stringify(counts.get('drop'), (_, v) => (typeof v === 'bigint' ? Number(v) : v)),
    );
    assert.equal(counts.get('drop')?.packets, BigInt(runs));
    assert.ok(Math.abs(Number(counts.get('remark')?.remarks) - (runs - passed)) <= 2);
    assert.equal(counts.get('remark')?.drops, 0n);
    assert.equal(counts.get('plain')?.packets, 10n);
    const cls = (await held.qos.counters()).classes.find((c) => c.class === 'bulk');
    assert.ok(Number(cls?.drops) >= runs - passed - 2 && Number(cls?.remarks) >= runs - passed - 2);
  });
});

test("on the agent's HTB tree the QoS classes are added beside the slices' and removed alone; the agent sees no drift", async () => {
  await withQosLink(async (_lab, link, held) => {
    const uplink = { interface: link.uplink, rateMbit: 9.5 };
    const slices = [{ name: 'alpha', uplink: link.uplink, share: 40, ceil: 100 }] as SliceConfig[];
    const spec = htbSpec(uplink as UplinkConfig, slices, [{ name: 'alpha', subnets: ['10.77.182.0/24'] }]);
    for (const cmd of htbCommands(link.uplink, spec, true))
      await run('tc', ['-n', link.a, ...cmd]).catch(() => undefined); // the first filter del finds none
    const observe = async () => ({
      root: true,
      classes: parseHtbClasses((await run('tc', ['-n', link.a, 'class', 'show', 'dev', link.uplink])).stdout),
      filters: parseU32Filters(
        (await run('tc', ['-n', link.a, '-j', 'filter', 'show', 'dev', link.uplink, 'parent', '1:'])).stdout,
      ),
    });
    const agentClasses = [...(await observe()).classes.keys()].sort();
    held.qos = QosEnforcer.open({ netns: link.a, bpf: trust });
    await held.qos.apply(
      policy(1, link.uplink, classes, [{ name: 'c2', class: 'c2', protocol: UDP, dstPortMin: 5301 }]),
    );
    const both = await observe();
    assert.deepEqual(htbDrift(spec, both), []);
    assert.deepEqual([...both.classes.keys()].sort(), [...agentClasses, '1:fff0', '1:fff1'].sort());
    await held.qos.close();
    held.qos = undefined;
    const after = await observe();
    assert.deepEqual([...after.classes.keys()].sort(), agentClasses);
    assert.deepEqual(htbDrift(spec, after), []);
  });
});

test('what is removed from under the policy in force is put back by repair()', async () => {
  await withQosLink(async (_lab, link, held) => {
    held.qos = QosEnforcer.open({ netns: link.a, bpf: trust });
    await held.qos.apply(
      policy(1, link.uplink, classes, [{ name: 'c2', class: 'c2', protocol: UDP, dstPortMin: 5301 }]),
    );
    assert.deepEqual(await held.qos.repair(), []);
    await run('tc', ['-n', link.a, 'class', 'del', 'dev', link.uplink, 'classid', '1:fff1']);
    assert.deepEqual(await held.qos.repair(), [`classes bulk missing on ${link.uplink}: rebuilt`]);
    const { stdout } = await run('tc', ['-n', link.a, 'class', 'show', 'dev', link.uplink]);
    assert.match(stdout, /class htb 1:fff1 /);
    assert.deepEqual(await held.qos.repair(), []);
  });
});
