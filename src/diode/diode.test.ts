/**
 * The diode end to end: `tacmesh diode send` and `recv` as processes in two namespaces
 * joined by a strictly one-way veth (nothing travels back: linkem drops 100 % of what the
 * receiving side sends), real TCP clients and destinations, loss by linkem.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connections, DiodeLab, LINK_PORT, type Proc, toolScript } from '../../test/support/diode/harness.js';
import { Tool, toolPath } from '../../test/support/tools/index.js';

// biome-ignore lint/suspicious/noExplicitAny: stats files are JSON read back from the processes
type Stats = any;

const MB = 1_000_000;
const tcpService = (name: string, listen: number, sink: number) => ({
  name,
  listen: `127.0.0.1:${listen}`,
  destination: `127.0.0.1:${sink}`,
});

describe('diode over a one-way link (real namespaces, TCP and UDP)', () => {
  let d: DiodeLab;

  before(async () => {
    // Jumbo frames allowed on the link; tests choose their datagram size.
    d = await DiodeLab.create({ subnet: 201, mtu: 9000 });
  });
  after(() => d?.close());

  type Running = { recv: Proc & { statsFile: string }; send: Proc & { statsFile: string }; sink: Proc };

  /** Runs `body` with a receiver, a sink and a sender; stops them (sender first) in any case. */
  async function withDiode(
    options: {
      sender: Record<string, unknown>;
      link?: Record<string, unknown>;
      receiver?: Record<string, unknown>;
      sinkPort: number;
    },
    body: (p: Running) => Promise<void>,
  ): Promise<{ send: Stats; recv: Stats }> {
    const recv = await d.receiver(options.receiver);
    const sink = await d.sink(options.sinkPort);
    const send = await d.sender(options.sender, options.link);
    let failed = false;
    try {
      await body({ recv, send, sink });
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      const stopped = {
        send: await send.stop<Stats>().catch(() => undefined),
        recv: await recv.stop<Stats>().catch(() => undefined),
      };
      await sink.kill();
      if (!failed) result = stopped;
    }
    return result;
  }
  let result: { send: Stats; recv: Stats } = { send: undefined, recv: undefined };

  test('a 200 MB TCP stream arrives bit-identical at 0 % loss; nothing is sent back on the link', async () => {
    d.link.forward.setLoss(0);
    const before = d.link.backward.counts();
    let sent: { sent: number; sha256: string } | undefined;
    const stats = await withDiode(
      { sender: { tcp: [tcpService('bulk', 9100, 9000)] }, link: { rateMbit: 450 }, sinkPort: 9000 },
      async ({ sink }) => {
        sent = await d.source(9100, 200 * MB, 'zero-loss');
        const [got] = await connections(sink, 1);
        assert.equal(got?.outcome, 'end');
        assert.equal(got?.bytes, 200 * MB);
        assert.equal(got?.sha256, sent.sha256, 'bit-identical');
      },
    );
    assert.equal(sent?.sent, 200 * MB);
    assert.equal(stats.recv.tcp.completed, 1);
    assert.equal(stats.recv.tcp.aborted, 0);
    assert.equal(stats.recv.link.receiveBuffer.short, false, 'the receive buffer got its size');
    assert.equal(stats.send.link.unexpectedInbound, 0, 'the sender received nothing');
    const after = d.link.backward.counts();
    assert.equal(after.droppedPackets - before.droppedPackets, 0n, 'the receiver sent nothing on the link');
  });

  test('a 200 MB TCP stream arrives bit-identical at 1 % loss (copies repair every loss)', async () => {
    d.link.forward.setLoss(0.01);
    const before = d.link.forward.counts();
    try {
      const stats = await withDiode(
        {
          sender: {
            tcp: [tcpService('bulk', 9101, 9001)],
            // Th2 leaves room for 3 copies of every frame: a frame is lost only if all 4 are (1e-8).
            // Copies whatever the send buffer holds: a policy that copies only while the buffer
            // has room would copy less when this machine is busy, and the test would then
            // measure the machine.
            throughput: [{ match: { service: 'bulk' }, mbit: 150 }],
            copies: { high: [{ freeAtLeast: 0, copies: 3 }] },
          },
          link: { rateMbit: 700, datagramBytes: 8972 },
          sinkPort: 9001,
        },
        async ({ sink }) => {
          const sent = await d.source(9101, 200 * MB, 'one-percent');
          const [got] = await connections(sink, 1);
          assert.equal(got?.outcome, 'end');
          assert.equal(got?.sha256, sent.sha256, 'bit-identical');
        },
      );
      // The ground truth is what linkem dropped on the way, not the 1 % asked of it.
      const after = d.link.forward.counts();
      const dropped = Number(after.droppedPackets - before.droppedPackets);
      const truth = dropped / (dropped + Number(after.passedPackets - before.passedPackets));
      const loss = stats.recv.link.health.datagramLoss;
      console.log(
        `1 % asked: linkem dropped ${(truth * 100).toFixed(3)} %, the receiver saw ${((loss ?? 0) * 100).toFixed(3)} %`,
      );
      assert.ok(truth > 0.005, `linkem dropped ${(truth * 100).toFixed(2)} % of the link's packets`);
      assert.ok(
        // Within half: the heartbeats' estimate has read up to a third low on a quiet machine
        // (0.67 % where 1 % was asked), a known fault of the estimate not yet found.
        loss !== null && Math.abs(loss - truth) < 0.5 * truth,
        `the receiver sees the link's loss: ${loss} where linkem dropped ${truth}`,
      );
      assert.equal(stats.recv.link.lostFrames, 0, 'no frame lost in every copy');
      assert.ok(stats.recv.link.duplicates > 0);
    } finally {
      d.link.forward.setLoss(0);
    }
  });

  test('UDP is forwarded with copies filtered by the window; Algorithm 1 lets spread copies through', async (t) => {
    const n = 2000;
    const run = async (dedup: 'window' | 'adjacent', port: number) => {
      let received = -1;
      const stats = await withDiode(
        {
          sender: {
            udp: [{ name: 'tele', listen: `127.0.0.1:${port + 100}`, destination: `127.0.0.1:${port}` }],
          },
          receiver: { dedup },
          link: { rateMbit: 50 },
          sinkPort: port + 200,
        },
        async ({ send, recv }) => {
          // The link up first (the receiver has heard the sender): UDP has no flow control, and a
          // burst that meets a receiver still starting on a busy machine is lost.
          const { epoch } = await d.waitStats<Stats>(send.statsFile, (s) => s.epoch > 0);
          await d.waitStats<Stats>(recv.statsFile, (s) => s.link.epoch === epoch);
          const udpSink = new Tool(
            d.lab.spawnNode(d.recvNs, toolPath('udp'), ['recv', String(port), '1500']),
          );
          await udpSink.line('ready');
          const source = new Tool(
            d.lab.spawnNode(d.sendNs, toolPath('udp'), [
              'send',
              '127.0.0.1',
              String(port + 100),
              String(n),
              '200',
              '4000',
            ]),
          );
          assert.deepEqual(await source.result(), { sent: n });
          ({ received } = await udpSink.result<{ received: number }>());
        },
      );
      return { received, stats };
    };
    const window = await run('window', 9300);
    assert.ok(
      window.stats.send.link.copiesSent >= n / 2,
      `copies sent: ${window.stats.send.link.copiesSent}`,
    );
    assert.equal(window.received, n, 'every datagram once');
    assert.equal(window.stats.recv.link.duplicates, window.stats.send.link.copiesSent);
    const adjacent = await run('adjacent', 9310);
    t.diagnostic(
      `window: ${window.received} delivered for ${n} (${window.stats.send.link.copiesSent} copies); ` +
        `Algorithm 1: ${adjacent.received} delivered for ${n} (${adjacent.stats.send.link.copiesSent} copies)`,
    );
    assert.ok(adjacent.stats.send.link.copiesSent >= n / 2);
    assert.ok(
      adjacent.received > n + adjacent.stats.send.link.copiesSent / 2,
      `Algorithm 1 delivered ${adjacent.received} for ${n} sent (${adjacent.stats.send.link.copiesSent} copies)`,
    );
  });

  test('a session with an unrecoverable gap is reset, never delivered with a hole', async () => {
    try {
      const stats = await withDiode(
        {
          sender: { tcp: [tcpService('lossy', 9102, 9002)], copies: { high: [], low: [] } },
          receiver: { tcp: { gapTimeoutMs: 300 } },
          // Slow enough that the loss comes after the session is open: a lost open frame
          // (5 % of the time) would leave no session at all to reset.
          link: { rateMbit: 10 },
          sinkPort: 9002,
        },
        async ({ recv, sink }) => {
          const source = d.source(9102, 5 * MB, 'gap');
          await d.waitStats<Stats>(recv.statsFile, (s) => s.tcp.active.length > 0);
          d.link.forward.setLoss(0.05);
          const sent = await source;
          const [got] = await connections(sink, 1, 20_000);
          assert.equal(got?.outcome, 'reset', 'the destination sees a reset, not an end');
          assert.ok((got?.bytes ?? 0) < sent.sent, 'and less than was sent');
        },
      );
      assert.equal(stats.recv.tcp.completed, 0);
      assert.equal(stats.recv.tcp.abortReasons.gap, 1);
    } finally {
      d.link.forward.setLoss(0);
    }
  });

  test('garbage datagrams are dropped and counted, and the receiver goes on working', async () => {
    const stats = await withDiode(
      { sender: { tcp: [tcpService('after', 9103, 9003)] }, link: { rateMbit: 100 }, sinkPort: 9003 },
      async ({ send, recv, sink }) => {
        const { epoch } = await d.waitStats<Stats>(send.statsFile, (s) => s.epoch > 0);
        const garbage = new Tool(
          d.lab.spawnNode(d.sendNs, toolScript('udp-garbage'), [
            d.recvAddr,
            String(LINK_PORT),
            '1800',
            String(epoch),
          ]),
        );
        const { sent, kinds } = await garbage.result<{ sent: number; kinds: Record<string, number> }>();
        const recvStats = await d.waitStats<Stats>(recv.statsFile, (s) => sumRejected(s) >= sent);
        const rej = recvStats.link.rejected;
        for (const k of [
          'version',
          'type',
          'flags',
          'truncated',
          'trailing',
          'oversized',
          'field',
        ] as const) {
          assert.equal(rej[k], kinds[k], k);
        }
        assert.equal(rej.short + rej.magic, (kinds.random ?? 0) + (kinds.short ?? 0));
        assert.ok(
          recvStats.link.lostFrames < 2 ** 20,
          'the window did not jump: the link is not blacked out',
        );
        const ok = await d.source(9103, 2 * MB, 'after-garbage');
        const [got] = await connections(sink, 1);
        assert.equal(got?.sha256, ok.sha256);
      },
    );
    assert.equal(stats.recv.tcp.completed, 1);
  });

  test('throughput control holds a session at or below its Th2 on a link 10x faster', async (t) => {
    const th2 = 20e6;
    let got: { samples: [number, number][] } | undefined;
    const stats = await withDiode(
      {
        sender: {
          tcp: [tcpService('paced', 9104, 9004)],
          throughput: [{ match: { service: 'paced' }, mbit: th2 / 1e6 }],
        },
        link: { rateMbit: 200 },
        sinkPort: 9004,
      },
      async ({ send, sink }) => {
        const source = d.startSource(9104, { seconds: 5 }, 'paced');
        // The sender reports eq. (2)'s equivalent delay while the session runs.
        const live = await d.waitStats<Stats>(
          send.statsFile,
          (s) => s.tcp.sessions[0]?.extraDelayMs !== null && s.tcp.sessions[0]?.extraDelayMs !== undefined,
        );
        assert.ok(live.tcp.sessions[0].rttMs > 0 && live.tcp.sessions[0].windowBytes > 0);
        await source.tool.exited;
        [got] = await connections(sink, 1);
      },
    );
    // The rate at the destination from 1 s to 4.5 s (past the first burst, before the end).
    const samples = got?.samples ?? [];
    const at = (ms: number) => samples.find(([t]) => t >= ms) ?? [0, 0];
    const [t0, b0] = at(1000);
    const [t1, b1] = at(4500);
    const rate = ((b1 - b0) * 8) / ((t1 - t0) / 1000);
    t.diagnostic(`held at ${(rate / 1e6).toFixed(2)} Mbit/s for Th2 ${th2 / 1e6} Mbit/s`);
    // Only the upper bound is the throttle's: a busy machine can only make the session slower.
    assert.ok(rate <= th2 * 1.1, `held at ${(rate / 1e6).toFixed(2)} Mbit/s for Th2 ${th2 / 1e6}`);
    assert.ok(rate > 0, 'the session carried data');
    assert.equal(stats.send.tcp.sessions[0].th2, th2);
  });

  test('a receiver restarted mid-stream resets that session and serves new ones', async () => {
    const recv1 = await d.receiver();
    const sink = await d.sink(9005);
    const send = await d.sender(
      {
        tcp: [tcpService('long', 9105, 9005), tcpService('next', 9106, 9005)],
        throughput: [{ match: { service: 'long' }, mbit: 20 }],
      },
      { rateMbit: 200 },
    );
    let recv2: (Proc & { statsFile: string }) | undefined;
    try {
      const long = d.startSource(9105, 50 * MB, 'long');
      await d.waitStats<Stats>(recv1.statsFile, (s) => s.tcp.deliveredBytes > 2 * MB);
      await recv1.kill();
      const [first] = await connections(sink, 1, 10_000);
      assert.equal(first?.outcome, 'reset', 'killed mid-stream: the destination gets a reset, not an end');
      assert.ok((first?.bytes ?? 0) < 50 * MB);
      recv2 = await d.receiver();
      const next = await d.source(9106, 3 * MB, 'next');
      const all = await connections(sink, 2, 20_000);
      assert.equal(all[1]?.outcome, 'end');
      assert.equal(all[1]?.sha256, next.sha256, 'the new session arrives bit-identical');
      // The old session's remaining frames reach the new receiver without their start: aborted, never delivered.
      const s2 = await d.waitStats<Stats>(recv2.statsFile, (s) => s.tcp.aborted >= 1);
      assert.equal(s2.tcp.completed, 1);
      await long.kill();
    } finally {
      await send.stop().catch(() => undefined);
      await recv2?.stop().catch(() => undefined);
      await sink.kill();
    }
  });
});

function sumRejected(s: Stats): number {
  return Object.values(s.link.rejected as Record<string, number>).reduce((a, b) => a + b, 0);
}
