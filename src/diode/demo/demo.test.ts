/**
 * `tacmesh diode demo` as a user meets it (real namespaces, linkem, `tacmesh diode` processes
 * from dist/): it comes up one-way, a file dropped into the outbox arrives bit-identical and
 * the demo's report says what the receiver's own status says, the TCP and UDP streams
 * cross, a probe from the receiving side never arrives, and down leaves nothing.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { isAlive } from '../../netlab/processes.js';
import { run } from '../../shared/exec.js';
import { loadConfig, recvSchema } from '../config.js';
import { receiverStatus } from '../status.js';
import { DiodeDemo, demoDown, readDemoState, STATE_FILE } from './demo.js';
import { demoReport } from './report.js';
import { DemoWatch, type Snapshot } from './watch.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, timeoutMs: number, fn: () => Snapshot | undefined): Promise<Snapshot> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

describe('tacmesh diode demo (namespaces, one-way link, both diode ends)', () => {
  let demo: DiodeDemo;
  let watch: DemoWatch;
  const snap = () => watch.snapshot(demo.linkCounters());

  before(async () => {
    demo = await DiodeDemo.up({ link: { rateMbit: 50, lossPct: 2, burst: 3 } }, (m) =>
      process.stderr.write(`[diode demo] ${m}\n`),
    );
    watch = new DemoWatch(() => demo.state);
  });
  after(async () => {
    if (readDemoState()?.prefix === demo?.state.prefix) await demo.down(() => undefined);
  });

  test('it comes up one-way, with auth, FEC for the loss, and both ends live', async () => {
    const p = demo.state.proof;
    assert.equal(p.backward.udpArrived, 0, 'no datagram came back');
    assert.equal(p.backward.tcpArrived, 0, 'no TCP connection came back');
    assert.notEqual(p.backward.tcp, 'connected');
    assert.equal(p.backward.pingsAnswered, 0);
    assert.equal(p.forward.udpArrived, p.forward.udpSent, 'the control went forward');
    assert.ok(p.oneWay);
    assert.deepEqual(demo.state.fec, { lossPct: 2, burst: 3 }, 'FEC sized for the loss set');
    const s = await until('heartbeats, syslog lines and telemetry at the receiving side', 30_000, () => {
      const x = snap();
      return x.receiver?.alive && x.tcp.linesDelivered > 20 && x.udp.delivered > 50 ? x : undefined;
    });
    assert.equal(s.receiver?.authFailures, 0, 'every frame carried a good tag');
    assert.ok((s.receiver?.heartbeats ?? 0) >= 2);
    assert.equal(s.tcp.gaps, 0, 'the log stream arrives in order, without holes');
  });

  test('a file dropped into the outbox arrives bit-identical; the report says what the receiver says', async () => {
    const sha = demo.drop('field-report.bin', 3_000_000);
    const s = await until('the file bit-identical in the inbox', 60_000, () => {
      const x = snap();
      return x.files.some((f) => f.name === 'field-report.bin' && f.state === 'complete') ? x : undefined;
    });
    const f = s.files.find((x) => x.name === 'field-report.bin');
    assert.equal(f?.sha256, sha, "the sender's manifest has the file's hash");
    assert.equal(f?.identical, true, "the demo's own hash of the inbox file matches");
    const report = demoReport(demo.state, s);
    assert.ok(report.ok);
    const status = receiverStatus(loadConfig(demo.state.paths.recvConfig, recvSchema)).json;
    const reported = report.files.filter((x) => x.outcome === 'bit-identical');
    assert.deepEqual(
      reported.map((x) => [x.name, x.sha256]),
      status.received.map((e: { name: string; sha256: string }) => [e.name, e.sha256]),
      'the files the report calls bit-identical are the ones the receiver received',
    );
    assert.equal(
      status.quarantined.length,
      report.files.filter((x) => x.detail.startsWith('quarantined')).length,
    );
  });

  test('nothing crosses back: a probe from the receiving side never arrives', async () => {
    const p = await demo.prove();
    assert.equal(p.backward.udpArrived, 0);
    assert.equal(p.backward.tcpArrived, 0);
    assert.equal(p.backward.pingsAnswered, 0);
    const s = snap();
    assert.equal(s.link.backward.passed, 0, 'the link let nothing back');
    assert.ok(s.link.backward.dropped >= p.backward.udpSent, 'it dropped what the probe sent');
    assert.equal(s.sender?.unexpectedInbound, 0, "nothing reached the sender's link socket");
  });

  test('down leaves no namespace, process, directory or state file', async () => {
    const { prefix, paths } = demo.state;
    const pids = Object.values(demo.state.pids);
    assert.ok(pids.every(isAlive), 'the demo ran its processes');
    await demoDown(() => undefined);
    const { stdout: ns } = await run('ip', ['netns', 'list']);
    assert.doesNotMatch(ns, new RegExp(prefix));
    const { stdout: links } = await run('ip', ['link', 'show']);
    assert.doesNotMatch(links, new RegExp(prefix));
    assert.deepEqual(pids.filter(isAlive), [], 'every process is gone');
    assert.equal(existsSync(paths.dir), false, 'the data directory is gone');
    assert.equal(existsSync(STATE_FILE), false, 'no state file');
  });
});
