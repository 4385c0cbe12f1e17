import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Tool, toolPath } from '../../test/support/tools/index.js';
import { Monitor } from '../node/monitor/monitor.js';
import { Lab } from './lab.js';
import { oneWayLink } from './link.js';
import { LinkEmulator } from './linkem.js';

describe('emulated links (real kernel, namespaces)', () => {
  let lab: Lab;
  let a: string;
  let b: string;

  before(async () => {
    lab = new Lab();
    a = await lab.netns('a', { ipv6: false });
    b = await lab.netns('b', { ipv6: false });
  });
  after(() => lab.cleanup());

  /** A veth a → b on 10.77.<subnet>.0/24 with static neighbours (no ARP in the counts). */
  async function plainLink(subnet: number) {
    const veth = await lab.veth(
      { netns: a, addr: `10.77.${subnet}.1/24` },
      { netns: b, addr: `10.77.${subnet}.2/24` },
    );
    await lab.staticNeighbours(
      { netns: a, iface: veth.a, ip: `10.77.${subnet}.1` },
      { netns: b, iface: veth.b, ip: `10.77.${subnet}.2` },
    );
    return veth;
  }

  /** `firstMs`: how long the sink waits for a first datagram (one that should never come: short). */
  async function udp(
    fromNs: string,
    toNs: string,
    toIp: string,
    port: number,
    count: number,
    firstMs = 30_000,
  ) {
    const sink = new Tool(lab.spawnNode(toNs, toolPath('udp'), ['recv', `${port}`, '800', `${firstMs}`]));
    await sink.line('ready');
    const source = new Tool(
      lab.spawnNode(fromNs, toolPath('udp'), ['send', toIp, `${port}`, `${count}`, '64']),
    );
    const { sent } = await source.result<{ sent: number }>();
    const { received } = await sink.result<{ received: number }>();
    return { sent, received };
  }

  test('linkem drops the configured fraction, within binomial tolerance', async () => {
    const veth = await plainLink(11);
    const loss = 0.2;
    const n = 20_000;
    const emulator = LinkEmulator.attach(veth.b, { netns: b, direction: 'ingress', loss });
    try {
      const { sent, received } = await udp(a, b, '10.77.11.2', 7100, n);
      const c = emulator.counts();
      assert.equal(sent, n);
      assert.equal(Number(c.passedPackets + c.droppedPackets), n, 'every packet was seen once');
      assert.equal(received, Number(c.passedPackets), 'what passed is what arrived');
      // 5 standard deviations of a binomial(n, loss): fails by chance about once in 3.5 million runs.
      const sigma = Math.sqrt(n * loss * (1 - loss));
      const dropped = Number(c.droppedPackets);
      assert.ok(
        Math.abs(dropped - n * loss) < 5 * sigma,
        `dropped ${dropped} of ${n}, expected ${n * loss} ± ${Math.round(5 * sigma)}`,
      );
      // Changing the loss takes effect at once, with no reload.
      emulator.setLoss(0);
      const clean = await udp(a, b, '10.77.11.2', 7101, 1000);
      assert.equal(clean.received, 1000);
    } finally {
      emulator.close();
    }
  });

  test('linkem in bursts: losses come b in a row, and the mean loss is the one set', async () => {
    const veth = await plainLink(14);
    const loss = 0.1;
    const burst = 10;
    const n = 20_000;
    const emulator = LinkEmulator.attach(veth.b, { netns: b, direction: 'ingress', loss, burst });
    try {
      const { sent, received } = await udp(a, b, '10.77.14.2', 7110, n);
      const c = emulator.counts();
      assert.equal(sent, n);
      assert.equal(received, Number(c.passedPackets), 'what passed is what arrived');
      const dropped = Number(c.droppedPackets);
      const bursts = Number(c.bursts);
      // Every burst drops `burst` packets, except one still under way on each CPU at the end.
      assert.ok(
        dropped <= bursts * burst && dropped > bursts * burst - 2 * burst,
        `dropped ${dropped} in ${bursts} bursts of ${burst}`,
      );
      // Bursts start at random: their count is binomial over the packets outside a burst;
      // 5 standard deviations of the dropped count (burst × that of the bursts).
      const expectedBursts = (n * loss) / burst;
      const sigma = burst * Math.sqrt(expectedBursts);
      assert.ok(
        Math.abs(dropped - n * loss) < 5 * sigma,
        `dropped ${dropped} of ${n}, expected ${n * loss} ± ${Math.round(5 * sigma)}`,
      );
    } finally {
      emulator.close();
    }
  });

  test('a one-way link carries traffic forward and nothing back, also with a monitor on the same hooks', async () => {
    const link = await oneWayLink(lab, a, b, { fromAddr: '10.77.12.1/24', toAddr: '10.77.12.2/24' });
    // flowmon shares the receiver's hooks: it must pass packets on (TCX_NEXT), never decide for linkem.
    const seen: number[] = [];
    const monitor = await Monitor.start(
      { flows: (r) => seen.push(...r.map((f) => f.packets)), http: () => undefined, stats: () => undefined },
      { interfaces: [link.toIface], netns: b, intervalMs: 60_000 },
    );
    try {
      const forward = await udp(a, b, '10.77.12.2', 7200, 1000);
      assert.equal(forward.received, 1000, 'forward: everything arrives');
      const backward = await udp(b, a, '10.77.12.1', 7201, 1000, 3000);
      assert.equal(backward.received, 0, 'backward: nothing arrives');
      assert.ok(link.backward.counts().droppedPackets >= 1000n, 'the reverse direction dropped them');
      monitor.tick();
      assert.ok(seen.reduce((s, n) => s + n, 0) >= 1000, 'the monitor saw the traffic it let through');
      assert.equal(link.backward.counts().passedPackets, 0n, 'and passed nothing');
      // TCP cannot even complete a handshake: the SYN-ACK never comes back.
      await assert.rejects(
        lab.exec(a, process.execPath, [
          '-e',
          "const s=require('net').connect(7202,'10.77.12.2');s.setTimeout(1500,()=>process.exit(3));s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(4))",
        ]),
        /exited|failed/i,
      );
    } finally {
      monitor.stop();
      link.close();
    }
  });
  test('a tc filter behind a tcx monitor still acts: the monitor passes packets on (TCX_NEXT)', async () => {
    const veth = await plainLink(13);
    // The testbed's order: the node's monitor (tcx) first, the link's loss (tc clsact) after it.
    const monitor = await Monitor.start(
      { flows: () => undefined, http: () => undefined, stats: () => undefined },
      { interfaces: [veth.b], netns: b, intervalMs: 60_000 },
    );
    const cut = LinkEmulator.attach(veth.b, { netns: b, direction: 'ingress', loss: 1, mode: 'tc' });
    try {
      assert.equal(
        (await udp(a, b, '10.77.13.2', 7300, 500)).received,
        0,
        'the tc program dropped everything',
      );
      assert.equal(cut.counts().droppedPackets, 500n);
    } finally {
      cut.close();
      monitor.stop();
    }
  });
});
