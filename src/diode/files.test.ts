/**
 * Issue 10 end to end: files with FEC and authenticated frames over a one-way namespace link
 * (nothing travels back), loss by linkem (independent) or by a relay (bursts), the carousel,
 * crash recovery with SIGKILL, a full disk on the receiver, forged/replayed/corrupted frames
 * and a fuzzer. `tacmesh diode send|recv|send-file|status` run as processes.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connections, DiodeLab, LINK_PORT, type Proc, toolScript } from '../../test/support/diode/harness.js';
import { Tool } from '../../test/support/tools/index.js';
import { run } from '../shared/exec.js';

// biome-ignore lint/suspicious/noExplicitAny: stats files are JSON read back from the processes
type Stats = any;
type Running = Proc & { statsFile: string };

const MB = 1_000_000;

/** A stats file as written after this call (the files are rewritten every 200 ms). */
async function fresh(file: string): Promise<Stats> {
  const since = Date.now();
  while ((statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0) <= since + 1)
    await new Promise((r) => setTimeout(r, 50));
  return JSON.parse(readFileSync(file, 'utf8'));
}

describe('diode files, FEC, auth, spool and carousel over a one-way link', () => {
  let d: DiodeLab;
  let keys: string;
  let n = 0;

  before(async () => {
    d = await DiodeLab.create({ subnet: 205 });
    keys = d.keyFile('keys');
  });
  after(() => d?.close());

  /** Directories of one scenario: the sender's spool, the receiver's inbox and state. */
  function dirs() {
    n++;
    return {
      store: join(d.dir, `store-${n}`),
      inbox: join(d.dir, `inbox-${n}`),
      state: join(d.dir, `state-${n}`),
      audit: join(d.dir, `audit-${n}`),
    };
  }

  const recvConfig = (x: ReturnType<typeof dirs>, extra: Record<string, unknown> = {}) => ({
    auth: { keyFile: keys },
    tcp: { allow: [] },
    stateDir: x.state,
    files: { inbox: x.inbox, incompleteAfterMs: 30_000 },
    audit: { file: `${x.audit}-recv.jsonl` },
    ...extra,
  });
  const sendConfig = (x: ReturnType<typeof dirs>, extra: Record<string, unknown> = {}) => ({
    auth: { keyFile: keys },
    store: { dir: x.store },
    audit: { file: `${x.audit}-send.jsonl` },
    ...extra,
    files: { outbox: join(x.store, 'outbox'), ...(extra.files as object | undefined) },
  });

  async function sendFile(sender: Proc, ...paths: string[]): Promise<void> {
    const t = await d.cli(['send-file', '--config', sender.configFile, '--no-wait', ...paths]);
    assert.equal(t.child.exitCode, 0, t.stdout);
  }

  async function stopAll(...procs: (Proc | undefined)[]): Promise<void> {
    for (const p of procs) await p?.stop().catch(() => p?.kill());
  }

  async function bulk(
    label: string,
    link: Record<string, unknown>,
    fec: Record<string, unknown>,
    relay?: string[],
    fileMB = 50,
  ) {
    const x = dirs();
    const files = [0, 1, 2, 3].map((i) => d.makeFile(`${label}-${i}.bin`, fileMB * MB));
    const [recv, relayProc] = await Promise.all([
      d.receiver(recvConfig(x)),
      relay ? d.relay(47100 + n, relay) : undefined,
    ]);
    const send = await d.sender(
      sendConfig(x, { fec: { expectedLoss: 0.05, ...fec }, ...(relay ? {} : {}) }),
      relay ? { ...link, to: `127.0.0.1:${47100 + n}`, from: '127.0.0.1' } : link,
    );
    let sent: Stats;
    let got: Stats;
    try {
      const t0 = performance.now();
      await sendFile(send, ...files.map((f) => f.path));
      for (const f of files) {
        const sha = await d.arrived(join(x.inbox, `${label}-${files.indexOf(f)}.bin`), 120_000);
        assert.equal(sha, f.sha256, `${f.path} bit-identical`);
      }
      const seconds = (performance.now() - t0) / 1000;
      got = await d.waitStats<Stats>(recv.statsFile, (s) => s.files.delivered === 4);
      sent = JSON.parse(readFileSync(send.statsFile, 'utf8'));
      return { got, sent, seconds, relay: relayProc, x };
    } finally {
      await stopAll(send, relayProc, recv);
    }
  }

  // The link runs well below what the receiver can decode on a busy 2-core machine: a one-way
  // link has no flow control, so a receiver short of CPU loses blocks (bench/diode measures speed).
  test('5 % random loss: 80 MB of files arrive bit-identical, repaired by FEC', async (t) => {
    d.link.forward.setLoss(0.05);
    try {
      const { got, sent, seconds } = await bulk(
        'random',
        { rateMbit: 50 },
        { burstFrames: 1 },
        undefined,
        20,
      );
      const fec = got.link.fec;
      t.diagnostic(
        `80 MB in ${seconds.toFixed(1)} s (${((80 * 8) / seconds).toFixed(0)} Mbit/s of files at 50 Mbit/s); ` +
          `loss seen ${(got.link.health.datagramLoss * 100).toFixed(2)} %; FEC overhead ${(sent.link.fec.overhead * 100).toFixed(1)} %; ` +
          `blocks ${fec.blocks}: ${fec.repaired} repaired, ${fec.failed} failed; min spare ${fec.minSpare}; ${fec.framesRecovered} frames rebuilt`,
      );
      assert.equal(fec.failed, 0, 'no block failed at the expected loss');
      assert.ok(fec.repaired > 0 && fec.framesRecovered > 0, 'FEC did the repairing');
      assert.ok(fec.minSpare >= 0);
      assert.equal(got.files.quarantined, 0);
      assert.ok(
        got.link.health.datagramLoss > 0.04,
        `the receiver sees the loss: ${got.link.health.datagramLoss}`,
      );
      assert.ok(got.link.health.sender.repairFrames > 0, "heartbeats carry the sender's counters");
    } finally {
      d.link.forward.setLoss(0);
    }
  });

  test('bursts of 20 lost datagrams: 200 MB of files arrive bit-identical', async (t) => {
    const { got, seconds, relay } = await bulk(
      'burst',
      { rateMbit: 60 },
      { expectedLoss: 0.015, burstFrames: 20, blockFrames: 4096 },
      ['--loss', '0.01', '--burst', '20'],
    );
    const r = relay?.lines<{ dropped: number; bursts: number }>().at(-1);
    t.diagnostic(
      `200 MB in ${seconds.toFixed(1)} s; ${r?.bursts} bursts dropped ${r?.dropped} datagrams; ` +
        `FEC: ${got.link.fec.repaired} blocks repaired, ${got.link.fec.failed} failed, min spare ${got.link.fec.minSpare}`,
    );
    assert.ok((r?.bursts ?? 0) > 20, 'bursts happened');
    // Every burst is 20 datagrams, but the last may be cut short by the end of the stream.
    const bursts = r?.bursts ?? 0;
    assert.ok(
      (r?.dropped ?? 0) > (bursts - 1) * 20 && (r?.dropped ?? 0) <= bursts * 20,
      `${r?.dropped} dropped in ${bursts} bursts`,
    );
    assert.equal(got.link.fec.failed, 0);
  });

  test('forged, replayed, bit-flipped and unsigned frames are dropped and counted; nothing reaches a destination', async () => {
    const x = dirs();
    const record = join(d.dir, 'recorded.bin');
    const [recv, sink, relay] = await Promise.all([
      d.receiver(recvConfig(x, { tcp: { allow: ['127.0.0.1:9020'] } })),
      d.sink(9020),
      d.relay(47090, ['--record', record, '--count', '3000']),
    ]);
    const service = [{ name: 'legit', listen: '127.0.0.1:9120', destination: '127.0.0.1:9020' }];
    let send: Running | undefined = await d.sender(sendConfig(x, { tcp: service }), {
      rateMbit: 100,
      to: '127.0.0.1:47090',
      from: '127.0.0.1',
    });
    let send2: Running | undefined;
    try {
      const legit = await d.source(9120, 2 * MB, 'legit');
      const [conn] = await connections(sink, 1);
      assert.equal(conn?.sha256, legit.sha256);
      const f = d.makeFile('legit.bin', 1 * MB);
      await sendFile(send, f.path);
      assert.equal(await d.arrived(join(x.inbox, 'legit.bin')), f.sha256);
      await relay.stop();
      const before: Stats = await fresh(recv.statsFile);
      const attack = async (kinds: string) => {
        const tool = new Tool(
          d.lab.spawnNode(d.sendNs, toolScript('udp-attack'), [d.recvAddr, String(LINK_PORT), record, kinds]),
        );
        return (await tool.result<{ sent: Record<string, number> }>()).sent;
      };
      const refused = (s: Stats) =>
        Object.values(s.link.auth as Record<string, number>).reduce((a, b) => a + b, 0) +
        Object.values(s.link.rejected as Record<string, number>).reduce((a, b) => a + b, 0);
      // Bit flips, forgeries, an unknown key, no tag: every one refused.
      const sent = await attack('flip,forge,unknown-key,unsigned');
      const total = Object.values(sent).reduce((a, b) => a + b, 0);
      const s1 = await d.waitStats<Stats>(recv.statsFile, (s) => refused(s) - refused(before) >= total);
      assert.ok(refused(s1) - refused(before) >= total, 'every attack frame refused');
      assert.equal(s1.link.auth['bad-tag'] - before.link.auth['bad-tag'] >= sent.forge!, true);
      assert.ok(s1.link.auth['unknown-key'] - before.link.auth['unknown-key'] >= sent['unknown-key']!);
      assert.ok(s1.link.auth.unauthenticated - before.link.auth.unauthenticated >= sent.unsigned!);
      assert.equal(s1.link.frames, before.link.frames, 'not one frame accepted');
      // Replayed within the epoch: the window drops them as seen before.
      const replayed = await attack('replay');
      const s2 = await d.waitStats<Stats>(
        recv.statsFile,
        (s) =>
          s.link.duplicates +
            s.link.repairDuplicates +
            s.link.stale -
            (s1.link.duplicates + s1.link.repairDuplicates + s1.link.stale) >=
          replayed.replay!,
      );
      assert.equal(s2.link.frames, before.link.frames, 'replays accepted: none');
      // After the sender restarted (a newer epoch), the old epoch is refused outright.
      await send.stop();
      send = undefined;
      send2 = await d.sender(sendConfig(x, { tcp: service }), { rateMbit: 100 });
      await d.waitStats<Stats>(
        recv.statsFile,
        (s) => s.link.epoch === JSON.parse(readFileSync(send2!.statsFile, 'utf8')).epoch,
      );
      const s3before: Stats = JSON.parse(readFileSync(recv.statsFile, 'utf8'));
      const again = await attack('replay');
      const s3 = await d.waitStats<Stats>(
        recv.statsFile,
        (s) => s.link.auth['old-epoch'] - s3before.link.auth['old-epoch'] >= again.replay!,
      );
      // No byte of any of it reached a destination: one TCP connection, one file.
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(sink.lines().length, 1, 'the destination saw only the legitimate session');
      assert.deepEqual(
        readdirSync(x.inbox).filter((e) => !e.startsWith('.')),
        ['legit.bin'],
      );
      assert.equal(s3.tcp.sessions, 1);
      assert.equal(s3.files.delivered, 1);
      // The counts are visible: metrics-style status.
      const status = await d.cli(['status', '--config', recv.configFile]);
      assert.match(status.stdout, /auth failures [1-9]/);
    } finally {
      await stopAll(send, send2, relay, recv);
      await sink.kill();
    }
  });
  test('kill -9 of the sender mid-transfer: restarted, it resumes, and the acknowledged file arrives', async (t) => {
    const x = dirs();
    const f = d.makeFile('resume-send.bin', 30 * MB);
    const recv = await d.receiver(recvConfig(x));
    let send: Running | undefined = await d.sender(sendConfig(x, { fec: { expectedLoss: 0.01 } }), {
      rateMbit: 60,
    });
    let send2: Running | undefined;
    try {
      await sendFile(send, f.path); // acknowledged: spooled on disk
      await d.waitStats<Stats>(recv.statsFile, (s) => s.files.chunks > 5000);
      await send.kill();
      const killed = performance.now();
      send = undefined;
      send2 = await d.sender(sendConfig(x, { fec: { expectedLoss: 0.01 } }), { rateMbit: 60 });
      const restarted = performance.now();
      assert.equal(await d.arrived(join(x.inbox, 'resume-send.bin')), f.sha256);
      const s = await d.waitStats<Stats>(recv.statsFile, (st) => st.files.delivered === 1);
      t.diagnostic(
        `sender restarted ${((restarted - killed) / 1000).toFixed(1)} s after kill -9; file complete ` +
          `${((performance.now() - restarted) / 1000).toFixed(1)} s later; ${s.files.duplicateChunks} chunks sent twice`,
      );
      assert.ok(s.files.duplicateChunks < f.size / 1000, 'resumed where it was, not from the start');
      const audit = readFileSync(`${x.audit}-send.jsonl`, 'utf8');
      assert.match(audit, /"event":"file-sent"/);
    } finally {
      await stopAll(send, send2, recv);
    }
  });

  test('kill -9 of the receiver mid-transfer: restarted, delivery resumes from the carousel', async (t) => {
    const x = dirs();
    const f = d.makeFile('resume-recv.bin', 20 * MB);
    let recv: Running | undefined = await d.receiver(recvConfig(x));
    let recv2: Running | undefined;
    const send = await d.sender(sendConfig(x, { fec: { expectedLoss: 0.01 }, files: { rounds: 4 } }), {
      rateMbit: 60,
    });
    try {
      await sendFile(send, f.path);
      await d.waitStats<Stats>(recv.statsFile, (s) => s.files.chunks > 4000);
      await new Promise((r) => setTimeout(r, 1200)); // a chunk map saved
      await recv.kill();
      recv = undefined;
      await new Promise((r) => setTimeout(r, 1000)); // blind for a while
      recv2 = await d.receiver(recvConfig(x));
      const restarted = performance.now();
      assert.equal(await d.arrived(join(x.inbox, 'resume-recv.bin'), 60_000), f.sha256);
      const roundsAtDelivery: number = (await fresh(send.statsFile)).files.rounds; // or later: safe
      const s = await d.waitStats<Stats>(recv2.statsFile, (st) => st.files.delivered === 1);
      t.diagnostic(
        `receiver restarted; file complete ${((performance.now() - restarted) / 1000).toFixed(1)} s later, ` +
          `receiving ${s.files.chunks} of ${Math.ceil(f.size / 1392)} chunks after the restart`,
      );
      assert.ok(s.files.chunks < f.size / 1392, 'the chunks kept before the crash were not received again');
      // A whole round after the one that completed it does not deliver it twice.
      await d.waitStats<Stats>(
        send.statsFile,
        (st) => st.files.sent === 1 || st.files.rounds >= roundsAtDelivery + 2,
        60_000,
      );
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(
        readdirSync(x.inbox).filter((e) => !e.startsWith('.')),
        ['resume-recv.bin'],
      );
    } finally {
      await stopAll(send, recv, recv2);
    }
  });

  test('a receiver started after the first round completes the file from the carousel', async () => {
    const x = dirs();
    const f = d.makeFile('late.bin', 10 * MB);
    // Enough rounds that a receiver slow to start on a busy machine still sees whole ones.
    const send = await d.sender(sendConfig(x, { files: { rounds: 30 } }), { rateMbit: 80 });
    let recv: Running | undefined;
    try {
      await sendFile(send, f.path);
      await d.waitStats<Stats>(send.statsFile, (s) => s.files.rounds >= 1);
      recv = await d.receiver(recvConfig(x));
      assert.equal(await d.arrived(join(x.inbox, 'late.bin'), 60_000), f.sha256);
      const status = await d.cli(['status', '--config', recv.configFile]);
      assert.match(status.stdout, /files received: 1/);
    } finally {
      await stopAll(send, recv);
    }
  });

  test('disk full on the receiver: files that do not fit are quarantined, never delivered in part', async () => {
    const x = dirs();
    const mnt = x.inbox;
    await run('mkdir', ['-p', mnt]);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tacmesh-diode-test', mnt]);
    let recv: Running | undefined;
    let send: Running | undefined;
    try {
      recv = await d.receiver(
        recvConfig(x, { files: { inbox: mnt, incompleteAfterMs: 30_000, reserveBytes: 65536 } }),
      );
      send = await d.sender(sendConfig(x), { rateMbit: 80 });
      const a = d.makeFile('fits.bin', 8 * MB);
      await sendFile(send, a.path);
      assert.equal(await d.arrived(join(mnt, 'fits.bin')), a.sha256);
      // Too large for what is left: refused at its manifest.
      const big = d.makeFile('too-big.bin', 30 * MB);
      await sendFile(send, big.path);
      await d.waitStats<Stats>(recv.statsFile, (s) => s.files.quarantined === 1);
      // Fits when announced, but the disk fills while it arrives.
      const c = d.makeFile('filled.bin', 12 * MB);
      await sendFile(send, c.path);
      await d.waitStats<Stats>(recv.statsFile, (s) => s.files.chunks > (8 * MB) / 1392 + 500);
      await run('sh', ['-c', `head -c 20000000 /dev/zero > ${join(mnt, '.filler')} || true`]);
      const s = await d.waitStats<Stats>(recv.statsFile, (st) => st.files.quarantined === 2, 30_000);
      assert.equal(s.files.delivered, 1);
      assert.deepEqual(
        readdirSync(mnt).filter((e) => !e.startsWith('.')),
        ['fits.bin'],
        'nothing partial in the inbox',
      );
      assert.equal(await d.arrived(join(mnt, 'fits.bin')), a.sha256, 'what was delivered is intact');
      const q = join(mnt, '.tacmesh', 'quarantine');
      const records = readdirSync(q).map((e) => JSON.parse(readFileSync(join(q, e, 'error.json'), 'utf8')));
      const refused = records.find((r) => r.manifest.name === 'too-big.bin');
      const filled = records.find((r) => r.manifest.name === 'filled.bin');
      assert.match(refused?.error ?? '', /disk full/);
      assert.deepEqual(refused?.missing, [[0, 30 * MB]]);
      assert.match(filled?.error ?? '', /disk full/);
      assert.ok(filled.missing.length > 0 && filled.receivedChunks > 0, 'the missing ranges are listed');
      assert.ok(
        existsSync(join(q, `${filled.manifest.id}-filled.bin`, 'data.part')),
        'the partial data is kept in quarantine',
      );
    } finally {
      await stopAll(send, recv);
      await run('umount', [mnt]).catch(() => run('umount', ['-l', mnt]));
    }
  });

  test('calibrate: the receiver measures each step, keeps the rate sustained and delivers nothing; a sender above it is warned', async () => {
    const x = dirs();
    const recv = await d.receiver(recvConfig(x));
    let send: Proc | undefined;
    try {
      const config = sendConfig(x, { fec: { expectedLoss: 0.001 } });
      const file = d.senderConfigFile(config, { rateMbit: 20 });
      const t = await d.cli(['calibrate', '--config', file, '--seconds', '1', '--steps', '50,100']);
      assert.equal(t.child.exitCode, 0, t.stderr);
      assert.match(t.stdout, /step 2: paced at 20 Mbit\/s, 2\.5 MB sent/);
      const result = join(x.state, 'calibration.json');
      const record = await d.waitStats<Stats>(result, (r) => r.steps.length === 2);
      assert.deepEqual(
        record.steps.map((s: Stats) => [s.rateMbit, s.whole, s.localDrops]),
        [
          [10, true, 0],
          [20, true, 0],
        ],
      );
      assert.equal(record.sustainedMbit, 20);
      assert.deepEqual(
        readdirSync(x.inbox).filter((f) => !f.startsWith('.')),
        [],
        'calibration files are not delivered',
      );
      const audit = readFileSync(`${x.audit}-recv.jsonl`, 'utf8');
      assert.equal(audit.match(/"event":"calibration-step"/g)?.length, 2);
      const status = await d.cli(['status', '--config', recv.configFile]);
      assert.match(
        status.stdout,
        /last calibration .*2 of 2 steps\): sustained 20 Mbit\/s; steps 10 ok, 20 ok/,
      );
      // Above what was sustained, the sender says so at its start.
      send = await d.sender(config, { rateMbit: 50, calibration: result });
      const warning = /link.rateMbit 50 is above the 20 Mbit\/s the last calibration sustained/;
      // The log line may reach stderr just after "ready" reached stdout.
      for (let i = 0; i < 100 && !warning.test(send.tool.stderr); i++)
        await new Promise((r) => setTimeout(r, 50));
      assert.match(send.tool.stderr, warning);
    } finally {
      await stopAll(send, recv);
    }
  });

  test('a fuzzer sends 1 M random and mutated frames: no crash, nothing delivered', async (t) => {
    const x = dirs();
    const record = join(d.dir, 'fuzz-recorded.bin');
    const [recv, sink, relay] = await Promise.all([
      d.receiver(recvConfig(x, { tcp: { allow: ['127.0.0.1:9030'] } })),
      d.sink(9030),
      d.relay(47095, ['--record', record, '--count', '500']),
    ]);
    const service = [{ name: 'fz', listen: '127.0.0.1:9130', destination: '127.0.0.1:9030' }];
    const send = await d.sender(sendConfig(x, { tcp: service, fec: { expectedLoss: 0.01 } }), {
      rateMbit: 100,
      to: '127.0.0.1:47095',
      from: '127.0.0.1',
    });
    try {
      const ok = await d.source(9130, 1 * MB, 'before-fuzz');
      await connections(sink, 1);
      while (!existsSync(record)) await new Promise((r) => setTimeout(r, 100));
      const before: Stats = await fresh(recv.statsFile);
      const tool = new Tool(
        d.lab.spawnNode(d.sendNs, toolScript('udp-attack'), [
          d.recvAddr,
          String(LINK_PORT),
          record,
          'fuzz',
          '1000000',
        ]),
      );
      const started = performance.now();
      const { sent } = await tool.result<{ sent: Record<string, number> }>();
      assert.equal(sent.fuzz, 1_000_000);
      t.diagnostic(`1 M datagrams sent in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(recv.tool.child.exitCode, null, 'the receiver is still running');
      const s: Stats = await fresh(recv.statsFile);
      const refused =
        Object.values(s.link.auth as Record<string, number>).reduce((a, b) => a + b, 0) +
        Object.values(s.link.rejected as Record<string, number>).reduce((a, b) => a + b, 0);
      t.diagnostic(
        `received ${s.link.datagrams - before.link.datagrams} of 1,000,000; refused ${refused}; ${JSON.stringify(s.link.auth)}`,
      );
      // Frames accepted meanwhile are the sender's own heartbeats (and their repairs) only.
      assert.equal(s.tcp.sessions, before.tcp.sessions, 'no session made up');
      assert.equal(s.files.manifests, before.files.manifests);
      assert.equal(s.udp.delivered ?? 0, before.udp.delivered ?? 0);
      // And it still works.
      const after = await d.source(9130, 1 * MB, 'after-fuzz');
      const conns = await connections(sink, 2);
      assert.equal(conns.length, 2, 'the destination saw the two real sessions and nothing else');
      assert.equal(conns[0]?.sha256, ok.sha256);
      assert.equal(conns[1]?.sha256, after.sha256);
    } finally {
      await stopAll(send, relay, recv);
      await sink.kill();
    }
  });
});
