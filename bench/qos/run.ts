/**
 * bench/qos: what QoS by eBPF costs and what it buys.
 *
 *   1. Forwarding throughput through a node (TCP, h → a → r → b, no rate limit) with the
 *      qos program and 1,000 rules installed vs none: typical rules (distinct destination
 *      prefixes: one LPM lookup finds the one candidate) and the worst case (1,000 rules
 *      without prefixes, all candidates, the flow's rule last). Also the program's own time
 *      per packet by BPF_PROG_TEST_RUN.
 *   2. Push-to-enforcement: an operator's change at the tower until the first packet with
 *      the new DSCP reaches the receiver (tower → gRPC → node → maps → wire).
 *   3. The high class's share under saturation on a 10 Mbit/s link, tacmesh vs the same
 *      classes configured by hand with tc (HTB + u32), in the same run.
 *
 *   node --import tsx bench/qos/run.ts [--seconds 4] [--repeat 3] [--pushes 20]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { QosEnforcer } from '../../src/node/qos/enforcer.js';
import type { QosRule } from '../../src/proto/index.js';
import { run } from '../../src/shared/exec.js';
import { testTrust } from '../../test/support/agent-node.js';
import {
  dscpReceiver,
  iperfServer,
  iperfUdp,
  LINK_BPS,
  policy,
  RECEIVER,
  receivedMbit,
  udpFrame,
  withQosLink,
} from '../../test/support/qos-link.js';
import { QosRig } from '../../test/support/qos-rig.js';
import { Tool, toolPath } from '../../test/support/tools/index.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    repeat: { type: 'string', default: '3' },
    pushes: { type: 'string', default: '20' },
  },
});
const SECONDS = Number(args.seconds);
const REPEAT = Number(args.repeat);
const PUSHES = Number(args.pushes);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? Number.NaN;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// qos.bpf.o is loaded only as a signed manifest lists it.
const trustDir = mkdtempSync(join(tmpdir(), 'tacmesh-qos-bench-'));
process.on('exit', () => rmSync(trustDir, { recursive: true, force: true }));
const trust = testTrust(trustDir, ['qos']);

const CLASSES = [
  { name: 'c2', priority: 0, guaranteedBps: 2_000_000, ceilingBps: 0, dscp: 46 },
  { name: 'bulk', priority: 7, guaranteedBps: 1_000_000, ceilingBps: 0, dscp: 8 },
];

/** 1,000 rules: `typical` with one /32 each (10.77.190.0–10.77.193.231), `worst` all wildcards. */
function thousandRules(kind: 'typical' | 'worst', port: number): QosRule[] {
  const rules: QosRule[] = [];
  for (let i = 0; i < 999; i++) {
    rules.push(
      kind === 'typical'
        ? { name: `r${i}`, class: 'bulk', dstPrefixes: [`10.77.${190 + (i >> 8)}.${i & 255}/32`] }
        : { name: `r${i}`, class: 'bulk', protocol: 17, dstPortMin: 20000 + i },
    );
  }
  rules.push({ name: 'flow', class: 'bulk', protocol: 6, dstPortMin: port, dstPrefixes: [`${RECEIVER}/32`] });
  return rules;
}

async function throughput(): Promise<void> {
  await withQosLink(async (lab, link, held) => {
    await run('tc', ['-n', link.r, 'qdisc', 'del', 'dev', link.radio, 'root']);
    await iperfServer(lab, link.b, 5401);
    const tcp = async () => {
      const { stdout } = await lab.exec(
        link.h,
        'iperf3',
        ['-c', RECEIVER, '-p', '5401', '-t', String(SECONDS), '-J'],
        { timeoutMs: (SECONDS + 20) * 1000 },
      );
      await sleep(300);
      return (JSON.parse(stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received
        .bits_per_second;
    };
    const fast = { iface: link.uplink, rateBps: 40e9, limits: [] };
    const configs: [string, QosRule[] | undefined][] = [
      ['no QoS (no program, no HTB)', undefined],
      ['qos program + HTB, 0 rules', []],
      ['1,000 rules, distinct prefixes', thousandRules('typical', 5401)],
      ['1,000 rules, all candidates (worst)', thousandRules('worst', 5401)],
    ];
    const results = new Map<string, number[]>(configs.map(([n]) => [n, []]));
    // interleaved rounds, so drift in the machine's load hits every configuration alike
    for (let round = 0; round < REPEAT; round++) {
      for (const [name, rules] of configs) {
        if (rules === undefined) {
          await held.qos?.close();
          held.qos = undefined;
        } else {
          held.qos ??= QosEnforcer.open({ netns: link.a, bpf: trust });
          await held.qos.apply({ ...policy(round + 1, link.uplink, CLASSES, rules), links: [fast] });
        }
        results.get(name)?.push(await tcp());
      }
    }
    const base = median(results.get('qos program + HTB, 0 rules') ?? []);
    console.log('\n1. forwarding throughput, TCP through the node (median of %d × %d s)', REPEAT, SECONDS);
    for (const [name, xs] of results) {
      const m = median(xs);
      console.log(
        `   ${name.padEnd(38)} ${(m / 1e9).toFixed(2)} Gbit/s   ratio to 0 rules ${(m / base).toFixed(3)}`,
      );
    }
  });
}

/** The program's own time per packet (BPF_PROG_TEST_RUN), 0 vs 1,000 rules. */
async function perPacket(): Promise<void> {
  await withQosLink(async (_lab, link, held) => {
    held.qos = QosEnforcer.open({ netns: link.a, bpf: trust });
    // to port 20998: in the worst case the last wildcard rule matches
    const pkt = udpFrame(20998);
    const time = async (rules: QosRule[]) => {
      await held.qos?.apply(policy(Date.now(), link.uplink, CLASSES, rules));
      return median([1, 2, 3].map(() => (held.qos as QosEnforcer).testRun(pkt, 200_000).nsPerRun));
    };
    const none = await time([]);
    const typical = await time(thousandRules('typical', 5401));
    const worst = await time(thousandRules('worst', 5401));
    console.log('\n   the program alone per packet (BPF_PROG_TEST_RUN, 200,000 runs):');
    console.log(
      `   0 rules ${none.toFixed(0)} ns · 1,000 distinct-prefix rules ${typical.toFixed(0)} ns · 1,000 candidates, match at #999 ${worst.toFixed(0)} ns`,
    );
  });
}

async function pushToEnforcement(): Promise<void> {
  const rig = new QosRig();
  try {
    await rig.start();
    const rx = await dscpReceiver(rig.lab, rig.link.b, 5420);
    const spec = (dscp: number) => ({
      classes: [{ name: 'c2', priority: 0, guaranteedBps: 2_000_000, dscp }],
      rules: [{ name: 'c2', class: 'c2', protocol: 17, dstPorts: [5420, 5420] }],
      links: rig.links(),
    });
    await rig.tower.qos.set('bench', spec(1));
    const sender = new Tool(
      rig.lab.spawnNode(rig.link.h, toolPath('udp'), [
        'send',
        RECEIVER,
        '5420',
        String(PUSHES * 1500 + 3000),
        '64',
        '1000',
      ]),
    );
    await sleep(1000);
    const took: number[] = [];
    const acked: number[] = [];
    for (let i = 0; i < PUSHES; i++) {
      const dscp = 10 + (i % 40);
      const t0 = Date.now();
      const r = await rig.tower.qos.set('bench', spec(dscp));
      if (r.version !== undefined && (await rig.tower.qos.settled(r.version, 2000)))
        acked.push(Date.now() - t0);
      const end = t0 + 3000;
      while (Date.now() < end && !rx.seen.some((s) => s.dscp === dscp && s.ms >= t0)) await sleep(2);
      const first = rx.seen.find((s) => s.dscp === dscp && s.ms >= t0);
      took.push(first ? Math.round(first.ms - t0) : Number.POSITIVE_INFINITY);
      await sleep(300);
    }
    sender.child.kill();
    console.log(`\n2. push to enforcement, ${PUSHES} changes (sender at 1,000 packets/s: ±1 ms)`);
    console.log(
      `   tower set → first packet with the new DSCP at the receiver: median ${median(took)} ms, p95 ${quantile(took, 0.95)} ms, max ${Math.max(...took)} ms`,
    );
    console.log(
      `   tower set → node reports it in force: median ${median(acked)} ms, max ${Math.max(...acked)} ms`,
    );
  } finally {
    await rig.stop();
  }
}

async function versusHandTc(): Promise<void> {
  await withQosLink(async (lab, link, held) => {
    await iperfServer(lab, link.b, 5501);
    await iperfServer(lab, link.b, 5502);
    const saturate = async () => {
      const c2 = iperfUdp(lab, link.h, 5501, 2, 5, 1);
      await sleep(300);
      const bulk = await iperfUdp(lab, link.h, 5502, 30, 6);
      const out = { c2: receivedMbit(await c2), bulk: receivedMbit(bulk) };
      await sleep(1000);
      return out;
    };
    const ours: { c2: number; bulk: number }[] = [];
    const hand: { c2: number; bulk: number }[] = [];
    for (let round = 0; round < REPEAT; round++) {
      held.qos = QosEnforcer.open({ netns: link.a, bpf: trust });
      await held.qos.apply(
        policy(1, link.uplink, CLASSES, [
          { name: 'c2', class: 'c2', protocol: 17, dstPortMin: 5501 },
          { name: 'bulk', class: 'bulk', protocol: 17, dstPortMin: 5502 },
        ]),
      );
      ours.push(await saturate());
      await held.qos.close();
      held.qos = undefined;
      const tc = (...a: string[]) => run('tc', ['-n', link.a, ...a]);
      const dev = ['dev', link.uplink];
      const kbit = (bps: number) => `${bps / 1000}kbit`;
      await tc('qdisc', 'replace', ...dev, 'root', 'handle', '1:', 'htb', 'default', 'ffff');
      await tc('class', 'replace', ...dev, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', kbit(LINK_BPS));
      // what an operator would type: the same classes, default bursts and queues
      for (const [classid, rate, prio] of [
        ['1:10', '2000kbit', '0'],
        ['1:20', '1000kbit', '7'],
        ['1:ffff', '6500kbit', '7'],
      ] as const) {
        await tc(
          'class',
          'replace',
          ...dev,
          'parent',
          '1:1',
          'classid',
          classid,
          'htb',
          'rate',
          rate,
          'ceil',
          kbit(LINK_BPS),
          'prio',
          prio,
        );
      }
      for (const [port, flow] of [
        ['5501', '1:10'],
        ['5502', '1:20'],
      ] as const) {
        await tc(
          'filter',
          'add',
          ...dev,
          'parent',
          '1:',
          'protocol',
          'ip',
          'prio',
          '1',
          'u32',
          'match',
          'ip',
          'protocol',
          '17',
          '0xff',
          'match',
          'ip',
          'dport',
          port,
          '0xffff',
          'flowid',
          flow,
        );
      }
      hand.push(await saturate());
      await tc('qdisc', 'del', ...dev, 'root');
    }
    const show = (xs: { c2: number; bulk: number }[]) =>
      `C2 ${median(xs.map((x) => x.c2)).toFixed(2)} Mbit/s (${((median(xs.map((x) => x.c2)) / 2) * 100).toFixed(1)} % of its 2 Mbit/s), bulk ${median(xs.map((x) => x.bulk)).toFixed(2)} Mbit/s`;
    console.log(
      `\n3. high class under saturation, 10 Mbit/s radio, node shapes to 9.5 (median of ${REPEAT})`,
    );
    console.log(`   tacmesh (eBPF classifier → HTB):   ${show(ours)}`);
    console.log(`   by hand (tc HTB + u32 filters):    ${show(hand)}`);
  });
}

await throughput();
await perPacket();
await pushToEnforcement();
await versusHandTc();
