/**
 * Isolation on a rate-limited uplink: the node's uplink leads to a "radio" whose link on is
 * a 20 Mbit/s FIFO (TBF). Slice A floods (UDP at 3x the link) while slice B runs TCP: with
 * the agent's HTB (19 Mbit/s, 50 % each) B keeps >= 95 % of its share. The control is read
 * from the kernel's counters, not from a second timed run: A's class dropped what it offered
 * beyond the link, so the flood really filled it. Then slice A is removed from the config
 * while B is busy: nothing of B is touched.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { makeTestNode, pings } from '../../../test/support/agent-node.js';
import { iperfServer } from '../../../test/support/iperf.js';
import { cleanLeftovers, Lab } from '../../netlab/lab.js';
import { run } from '../../shared/exec.js';
import { Agent, removeNode } from './agent.js';
import { parseNodeConfig } from './config.js';
import { StateStore } from './state.js';

const LINK_MBIT = 20;
/** The node shapes a little under the radio link's rate, so the queue forms at the node, in HTB. */
const RATE_MBIT = 19;
const SHARE = 50; // % each: 9.5 Mbit/s per slice
const WAN = '10.77.111.2';
const HEADERS = 14 + 20 + 32; // Ethernet, IP, TCP with timestamps: what HTB counts besides the payload

interface Iperf3 {
  end: {
    sum_received?: { bits_per_second: number };
    sum?: { bits_per_second: number; lost_percent?: number };
  };
}

async function iperf(lab: Lab, from: string, port: number, args: string[], seconds: number): Promise<Iperf3> {
  const { stdout } = await lab.exec(
    from,
    'iperf3',
    ['-c', WAN, '-p', String(port), '-t', String(seconds), '-J', ...args],
    {
      timeoutMs: (seconds + 15) * 1000,
    },
  );
  return JSON.parse(stdout) as Iperf3;
}

test('a flooded slice does not take another below its share; removing it leaves the other untouched', async () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-isolation-'));
  const node = await makeTestNode(lab, { rateMbit: RATE_MBIT, shares: [SHARE, SHARE], radioMbit: LINK_MBIT });
  const store = new StateStore(join(dir, 'state'));
  try {
    const agent = new Agent(node.config, { stateDir: store.dir });
    assert.deepEqual(
      (await agent.apply()).filter((e) => !e.ok),
      [],
    );
    await iperfServer(lab, node.wan, 5201);
    await iperfServer(lab, node.wan, 5202);
    const a1 = `${lab.prefix}-n1-a-a1`;
    const b1 = `${lab.prefix}-n1-b-b1`;
    const share = (RATE_MBIT * SHARE) / 100;

    const alone = await iperf(lab, b1, 5202, [], 4);
    const aloneMbit = alone.end.sum_received!.bits_per_second / 1e6;

    const beside = async () => {
      const flood = iperf(lab, a1, 5201, ['-u', '-b', `${LINK_MBIT * 3}M`, '-l', '1400'], 7);
      await new Promise((r) => setTimeout(r, 1000));
      const b = await iperf(lab, b1, 5202, [], 5);
      const goodput = b.end.sum_received!.bits_per_second / 1e6;
      return {
        goodput,
        wire: (goodput * (1448 + HEADERS)) / 1448,
        flood: (await flood).end.sum!.bits_per_second / 1e6,
      };
    };
    const classA = agent.desired.uplinks[0]!.htb.classes.find((c) => c.owner === 'a')!.classid;
    const dropsA = async () => {
      // ` Sent 123 bytes 4 pkt (dropped 5, overlimits 6 requeues 0)` (tc has no JSON for classes)
      const { stdout } = await lab.tc(
        node.netns,
        '-s',
        'class',
        'show',
        'dev',
        node.uplink,
        'classid',
        classA,
      );
      return Number(stdout.match(/\(dropped (\d+),/)?.[1] ?? Number.NaN);
    };
    const dropsBefore = await dropsA();
    const shaped = await beside();
    const dropped = (await dropsA()) - dropsBefore;
    const pct = (mbit: number) => `${((mbit / share) * 100).toFixed(1)} % of its share`;
    console.log(
      `radio link ${LINK_MBIT} Mbit/s, HTB ${RATE_MBIT} Mbit/s, share of B ${share} Mbit/s; B alone: ${aloneMbit.toFixed(2)} Mbit/s; ` +
        `beside A's ${shaped.flood.toFixed(0)} Mbit/s UDP flood: B ${shaped.goodput.toFixed(2)} Mbit/s TCP goodput ` +
        `(${shaped.wire.toFixed(2)} on the wire, ${pct(shaped.wire)}); A's class dropped ${dropped} packets`,
    );
    assert.ok(aloneMbit > share * 1.5, `alone, B borrows what A leaves (${aloneMbit.toFixed(2)} Mbit/s)`);
    // The control: the flood offered more than the link carries, and its own class paid for it.
    assert.ok(dropped > 0, "A's flood filled the link: its HTB class dropped the excess");
    assert.ok(
      shaped.wire >= 0.95 * share,
      `B keeps >= 95 % of its share: ${shaped.wire.toFixed(2)} of ${share} Mbit/s`,
    );

    // Slice A is removed while B works: nothing of B is touched, B keeps talking.
    const ifindexBefore = (await lab.ip(node.netns, '-j', 'link', 'show')).stdout;
    const classB = agent.desired.uplinks[0]!.htb.classes.find((c) => c.owner === 'b')!.classid;
    const classLine = async () =>
      (await lab.tc(node.netns, 'class', 'show', 'dev', node.uplink, 'classid', classB)).stdout.trim();
    const classBefore = await classLine();
    assert.match(classBefore, /rate 9500Kbit ceil 19Mbit/);
    const withoutA = parseNodeConfig(
      stringify({ ...node.config, slices: node.config.slices.filter((s) => s.name !== 'a') }),
    );
    const pinging = lab.exec(b1, 'ping', ['-c', '20', '-i', '0.05', '-W', '1', WAN]);
    const events = await agent.apply(withoutA);
    const { stdout: pingOut } = await pinging;
    assert.match(pingOut, / 0% packet loss/, 'B lost nothing while A was removed');
    assert.ok(events.length > 0);
    assert.deepEqual(
      events.filter((e) => e.entity.startsWith('slice b')),
      [],
      "no action on slice b's switch or members",
    );
    const bLinks = (json: string) =>
      (JSON.parse(json) as { ifname: string; ifindex: number }[])
        .filter(
          (l) =>
            agent.desired.slices[0]!.members.some((m) => m.port === l.ifname) ||
            l.ifname === agent.desired.slices[0]!.bridge,
        )
        .map((l) => `${l.ifname}:${l.ifindex}`);
    assert.deepEqual(bLinks((await lab.ip(node.netns, '-j', 'link', 'show')).stdout), bLinks(ifindexBefore));
    assert.equal(await classLine(), classBefore, "slice b's HTB class is the same");
    const filters = (await lab.tc(node.netns, '-j', 'filter', 'show', 'dev', node.uplink, 'parent', '1:'))
      .stdout;
    assert.match(filters, new RegExp(`"flowid":"${classB}"`), "slice b's traffic still goes to its class");
    assert.ok(
      events.every((e) => e.ok),
      JSON.stringify(events.filter((e) => !e.ok)),
    );
    assert.ok(await pings(b1, WAN));
    const { stdout: nsList } = await run('ip', ['netns', 'list']);
    assert.doesNotMatch(nsList, new RegExp(`${lab.prefix}-n1-a-`), "slice a's members are gone");
  } finally {
    await removeNode(node.config, store).catch(() => undefined);
    await lab.cleanup();
    await cleanLeftovers(new RegExp(`^${lab.prefix}`));
    rmSync(dir, { recursive: true, force: true });
  }
});
