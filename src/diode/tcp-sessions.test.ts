/**
 * Issue 10 for TCP, end to end on a one-way namespace link: sessions accepted into the
 * sender's spool survive a SIGKILL of the sender (replayed after the restart), sessions held
 * in the receiver's spool survive a SIGKILL of the receiver (delivered again), a service's
 * carousel lets a receiver started late complete a session, and a session is delivered once
 * however many rounds of it arrive. `tacmesh diode send|recv` run as processes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connections, DiodeLab, type Proc } from '../../test/support/diode/harness.js';
import { readAudit } from './audit.js';

// biome-ignore lint/suspicious/noExplicitAny: stats files are JSON read back from the processes
type Stats = any;
type Running = Proc & { statsFile: string };

const MB = 1_000_000;

describe('diode TCP sessions: crash-safe spool and carousel over a one-way link', () => {
  let d: DiodeLab;
  let n = 0;

  before(async () => {
    d = await DiodeLab.create({ subnet: 207 });
  });
  after(() => d?.close());

  /** Per-scenario ports and directories. */
  function scenario(carousel: Record<string, unknown> = {}) {
    n++;
    const listen = 9400 + n;
    const sinkPort = 9500 + n;
    const x = {
      sinkPort,
      listen,
      store: join(d.dir, `tcp-store-${n}`),
      state: join(d.dir, `tcp-state-${n}`),
      audit: join(d.dir, `tcp-audit-${n}`),
    };
    const sendConfig = {
      tcp: [
        { name: `s${n}`, listen: `127.0.0.1:${listen}`, destination: `127.0.0.1:${sinkPort}`, ...carousel },
      ],
      store: { dir: x.store },
      audit: { file: `${x.audit}-send.jsonl` },
    };
    const recvConfig = (extra: Record<string, unknown> = {}) => ({
      insecure: true,
      stateDir: x.state,
      audit: { file: `${x.audit}-recv.jsonl` },
      ...extra,
    });
    return { ...x, sendConfig, recvConfig };
  }

  async function stopAll(...procs: (Proc | undefined)[]): Promise<void> {
    for (const p of procs) await p?.stop().catch(() => p?.kill());
  }

  const stats = (p: Running): Stats => JSON.parse(readFileSync(p.statsFile, 'utf8'));
  const audit = (file: string) => readAudit(readFileSync(file, 'utf8'));

  test('sender killed with SIGKILL after the client finished, before the link sent it all: replayed whole after the restart', async (t) => {
    const x = scenario();
    const [recv, sink] = await Promise.all([d.receiver(x.recvConfig()), d.sink(x.sinkPort)]);
    // 8 Mbit/s with a 4 MiB send buffer: the client finishes with ~3 MB still to go.
    let send: Running | undefined = await d.sender(x.sendConfig, { rateMbit: 8 });
    let send2: Running | undefined;
    try {
      const sent = await d.source(x.listen, 6 * MB, 'kill-sender');
      assert.equal(sent.outcome, 'end', 'the client got its FIN: the session is accepted');
      await send.kill();
      send = undefined;
      const before: Stats = JSON.parse(readFileSync(recv.statsFile, 'utf8'));
      assert.ok(
        before.tcp.deliveredBytes < 6 * MB,
        `not all sent before the kill: ${before.tcp.deliveredBytes}`,
      );
      send2 = await d.sender(x.sendConfig, { rateMbit: 40 });
      const conns = await connections(sink, 2, 30_000);
      t.diagnostic(`destination connections: ${conns.map((c) => `${c.outcome} ${c.bytes}`).join(', ')}`);
      assert.equal(conns[0]?.outcome, 'reset', 'the cut live round is reset, not ended');
      assert.ok((conns[0]?.bytes ?? 0) < 6 * MB);
      assert.equal(conns[1]?.outcome, 'end');
      assert.equal(conns[1]?.bytes, 6 * MB);
      assert.equal(conns[1]?.sha256, sent.sha256, 'bit-identical');
      const s = await d.waitStats<Stats>(send2.statsFile, (st) => st.tcp.sent === 1);
      assert.equal(s.tcp.replayed, 1);
      assert.equal(s.tcp.stored, 0, 'the spool let go of it once sent');
      const r = await d.waitStats<Stats>(recv.statsFile, (st) => st.tcp.completed === 1);
      assert.equal(r.tcp.abortReasons.superseded, 1, 'the cut round gave way to the replay');
      const status = await d.cli(['status', '--config', send2.configFile]);
      assert.match(status.stdout, /1 sessions replayed after a restart, 1 sent in full/);
      assert.match(status.stdout, /tcp sessions in the spool: 0/);
      const events = audit(`${x.audit}-send.jsonl`).map((e) => e.event);
      assert.ok(events.includes('session-accepted') && events.includes('session-replayed'));
      assert.ok(events.includes('session-sent'));
    } finally {
      await stopAll(send, send2, recv);
      await sink.kill();
    }
  });

  test('receiver killed with SIGKILL mid-delivery to a slow destination: restarted, it delivers the held session whole', async (t) => {
    const x = scenario();
    const recvConfig = x.recvConfig({ tcp: { store: { retryMs: 300 } } });
    // 4 MB/s: delivery takes 12 s, far more than the link's 4 s; the kernel's socket buffers
    // (several MB each way) absorb only the start, so the kill lands mid-delivery. The restarted
    // receiver delivers to a fast destination: the slowness was only for where the kill lands.
    const [first, sink] = await Promise.all([d.receiver(recvConfig), d.sink(x.sinkPort, 4 * MB)]);
    let recv: Running | undefined = first;
    let recv2: Running | undefined;
    const send = await d.sender(x.sendConfig, { rateMbit: 100 });
    try {
      const sent = await d.source(x.listen, 48 * MB, 'kill-receiver');
      assert.equal(sent.outcome, 'end');
      await d.waitStats<Stats>(recv.statsFile, (s) =>
        s.tcp.active.some((a: Stats) => a.heldComplete && a.delivered > 1 * MB && a.delivered < 24 * MB),
      );
      await recv.kill();
      recv = undefined;
      const [cut] = await connections(sink, 1, 10_000);
      // A SIGKILLed process's socket is closed by the kernel: a reset, or a FIN once its send
      // buffer drains (an orphaned socket). Either way the destination got only part of it.
      assert.ok(cut?.outcome === 'reset' || cut?.outcome === 'end', `killed mid-delivery: ${cut?.outcome}`);
      assert.ok(
        (cut?.bytes ?? 0) < 48 * MB,
        'killed mid-delivery: the destination got only part of the session',
      );
      sink.signal('SIGUSR1');
      recv2 = await d.receiver(recvConfig);
      const conns = await connections(sink, 2, 30_000);
      t.diagnostic(`destination connections: ${conns.map((c) => `${c.outcome} ${c.bytes}`).join(', ')}`);
      assert.equal(conns[1]?.outcome, 'end');
      assert.equal(conns[1]?.sha256, sent.sha256, 'bit-identical');
      const s = await d.waitStats<Stats>(recv2.statsFile, (st) => st.tcp.deliveredFromSpool === 1);
      assert.equal(s.tcp.held, 0, 'the spool let go of it once delivered');
      const status = await d.cli(['status', '--config', recv2.configFile]);
      assert.match(status.stdout, /tcp: 1 sessions delivered \(1 from the spool after a restart\)/);
      assert.match(status.stdout, /tcp sessions held complete in the spool: 0/);
      const delivered = audit(`${x.audit}-recv.jsonl`).filter((e) => e.event === 'session-delivered');
      assert.equal(delivered.length, 1);
      assert.equal(delivered[0]?.fromSpool, true);
      assert.equal(delivered[0]?.sha256, sent.sha256);
    } finally {
      await stopAll(send, recv, recv2);
      await sink.kill();
    }
  });

  test('a receiver started after the first rounds completes the session from a later round of the carousel', async () => {
    const x = scenario({ rounds: 8 });
    const sink = await d.sink(x.sinkPort);
    const send = await d.sender(x.sendConfig, { rateMbit: 16 }); // 2 MB: about a second per round
    let recv: Running | undefined;
    try {
      const sent = await d.source(x.listen, 2 * MB, 'late');
      await d.waitStats<Stats>(send.statsFile, (s) => s.tcp.rounds >= 1);
      recv = await d.receiver(x.recvConfig());
      const [got] = await connections(sink, 1, 30_000);
      assert.equal(got?.outcome, 'end');
      assert.equal(got?.sha256, sent.sha256, 'bit-identical');
      const delivered = audit(`${x.audit}-recv.jsonl`).find((e) => e.event === 'session-delivered');
      assert.ok((delivered?.round as number) >= 2, `delivered from round ${delivered?.round}`);
    } finally {
      await stopAll(send, recv);
      await sink.kill();
    }
  });

  test('rounds of a session already delivered are not delivered again, across a receiver restart too', async () => {
    const x = scenario({ rounds: 6 });
    const [first, sink] = await Promise.all([d.receiver(x.recvConfig()), d.sink(x.sinkPort)]);
    let recv: Running | undefined = first;
    let recv2: Running | undefined;
    const send = await d.sender(x.sendConfig, { rateMbit: 16 });
    try {
      const sent = await d.source(x.listen, 2 * MB, 'once');
      const [got] = await connections(sink, 1, 20_000);
      assert.equal(got?.sha256, sent.sha256);
      await d.waitStats<Stats>(recv.statsFile, (s) => s.tcp.roundsIgnored >= 1);
      await recv.kill();
      recv = undefined;
      recv2 = await d.receiver(x.recvConfig());
      await d.waitStats<Stats>(send.statsFile, (s) => s.tcp.sent === 1, 30_000);
      const s = await d.waitStats<Stats>(recv2.statsFile, (st) => st.tcp.roundsIgnored >= 1);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(sink.lines().length, 1, 'one destination connection for six rounds');
      assert.equal(s.tcp.completed, 0, 'the restarted receiver delivered nothing again');
      assert.equal(stats(send).tcp.rounds, 5, 'five rounds from the spool after the live one');
    } finally {
      await stopAll(send, recv, recv2);
      await sink.kill();
    }
  });
});
