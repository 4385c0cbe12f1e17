/**
 * `tacmesh diode demo`: a sender side and a receiver side in network namespaces, joined by
 * a strictly one-way link (linkem drops everything the receiving end sends, in tc mode so
 * it stays one-way even if this process dies), shown one-way by a probe before anything
 * runs; keys made, auth on, FEC sized for the loss; `tacmesh diode send` and `recv` as
 * processes, a TCP log stream and a UDP telemetry stream across, an outbox and an inbox.
 * The link's rate, loss and burst change live. `down` (or the end of the demo) removes
 * everything: processes by PID, namespaces, the data directory, the state file.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { cleanLeftovers, Lab, newRunPrefix, requireRoot } from '../../netlab/lab.js';
import { limitRate, type OneWayLink, oneWayLink } from '../../netlab/link.js';
import { describeProof, type OneWayProof, proveOneWay } from '../../netlab/one-way-proof.js';
import { assertRunning, isAlive, logTail, startDetached, stopAll } from '../../netlab/processes.js';
import { readStateFile, writeStateFile } from '../../netlab/state-file.js';
import { scriptPath } from '../../netlab/tools/index.js';
import { type Program, requirePrograms } from '../../shared/programs.js';
import { recvSchema, sendSchema } from '../config.js';
import { generateKey } from '../protocol/auth.js';
import {
  type DemoOptions,
  type DemoPaths,
  demoPaths,
  type FecSetting,
  fecFor,
  type LinkSetting,
  PORTS,
  RECV_ADDR,
  recvConfig,
  SEND_ADDR,
  sendConfig,
} from './plan.js';

export const STATE_FILE = '/run/tacmesh/diode-demo.json';
const BIN = fileURLToPath(new URL('../../../bin/tacmesh.js', import.meta.url));
/** What the demo runs: checked before it makes anything. */
const DEMO_PROGRAMS: Program[] = ['ip', 'tc', 'nsenter', 'sysctl', 'ping'];

export type Progress = (message: string) => void;

export interface DemoState {
  prefix: string;
  /** The process that made the demo and drives it (the `tacmesh diode demo` in the foreground). */
  controller: number;
  paths: DemoPaths;
  netns: { send: string; recv: string };
  /** The link's interface at each end. */
  iface: { send: string; recv: string };
  /** name → PID of every process of the demo. */
  pids: Record<string, number>;
  link: LinkSetting;
  fec: FecSetting;
  proof: OneWayProof;
  startedAt: number;
}

export function readDemoState(): DemoState | undefined {
  return readStateFile<DemoState>(STATE_FILE);
}

function writeState(state: DemoState): void {
  writeStateFile(STATE_FILE, state);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function writeConfig(file: string, config: Record<string, unknown>, check: { parse(v: unknown): unknown }) {
  check.parse(config); // a demo that would write a config its diode refuses fails here, by name
  writeFileSync(file, stringify(config), { mode: 0o600 });
}

/** Waits until `file` was written after `since` (a process's first stats). */
async function written(file: string, since: number, what: string, check: () => void, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    check();
    try {
      if (statSync(file).mtimeMs >= since) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}

export class DiodeDemo {
  private constructor(
    readonly state: DemoState,
    private readonly lab: Lab,
    private readonly link: OneWayLink,
  ) {}

  static async up(options: DemoOptions, progress: Progress): Promise<DiodeDemo> {
    requireRoot();
    requirePrograms(DEMO_PROGRAMS, 'the diode demo');
    const existing = readDemoState();
    if (existing && [existing.controller, ...Object.values(existing.pids)].some(isAlive))
      throw new Error(
        `a diode demo is already up (${existing.prefix}, outbox ${existing.paths.outbox}): \`tacmesh diode demo down\` first`,
      );
    if (existing) rmSync(STATE_FILE, { force: true });
    const prefix = newRunPrefix();
    const paths = demoPaths(mkdtempSync(join(tmpdir(), `tacmesh-diode-demo-${prefix}-`)));
    for (const d of [paths.logs, paths.outbox, paths.inbox]) mkdirSync(d, { recursive: true, mode: 0o700 });
    const lab = new Lab(prefix);
    const fec = fecFor(options);
    const state: DemoState = {
      prefix,
      controller: process.pid,
      paths,
      netns: { send: '', recv: '' },
      iface: { send: '', recv: '' },
      pids: {},
      link: options.link,
      fec,
      proof: undefined as unknown as OneWayProof,
      startedAt: Date.now(),
    };
    let link: OneWayLink | undefined;
    try {
      progress(`diode demo ${prefix}: data in ${paths.dir}`);
      progress('namespaces: the sending side and the receiving side, joined by a one-way link');
      state.netns.send = await lab.netns('send', { ipv6: false });
      state.netns.recv = await lab.netns('recv', { ipv6: false });
      link = await oneWayLink(lab, state.netns.send, state.netns.recv, {
        fromAddr: `${SEND_ADDR}/30`,
        toAddr: `${RECV_ADDR}/30`,
        rateMbit: options.link.rateMbit,
        mode: 'tc',
      });
      state.iface = { send: link.fromIface, recv: link.toIface };
      writeState(state);

      progress('proof: probes from the receiving side must not reach the sending side');
      state.proof = await proveOneWay(lab, {
        protectedSide: { netns: state.netns.send, addr: SEND_ADDR },
        sender: { netns: state.netns.send },
        receiver: { netns: state.netns.recv, addr: RECV_ADDR },
        port: PORTS.probe,
      });
      for (const line of describeProof(state.proof).split('\n')) progress(`  ${line}`);
      if (!state.proof.oneWay) throw new Error('the link is not one-way: the demo stops here');
      link.forward.setLoss(options.link.lossPct / 100, options.link.burst);

      progress(
        `keys, auth on; FEC sized for ${fec.lossPct} % loss in bursts of ${fec.burst}; the link ${options.link.rateMbit} Mbit/s, ${options.link.lossPct} % loss, bursts of ${options.link.burst}`,
      );
      generateKey(paths.keys, 1);
      writeConfig(paths.sendConfig, sendConfig(paths, options.link, fec), sendSchema);
      writeConfig(paths.recvConfig, recvConfig(paths), recvSchema);
      const demo = new DiodeDemo(state, lab, link);
      progress('processes: tacmesh diode recv and send, a TCP log stream, a UDP telemetry stream');
      await demo.startDiode('recv');
      await demo.startDiode('send');
      await demo.startTraffic(options);
      writeState(state);
      progress(`up: drop files into ${paths.outbox}; they appear in ${paths.inbox}`);
      return demo;
    } catch (err) {
      progress(`failed: ${(err as Error).message.split('\n')[0]} — removing what was made`);
      await teardown(state, lab, link).catch(() => undefined);
      throw err;
    }
  }

  private running = () => assertRunning(this.state.pids, this.state.paths.logs);

  private start(name: string, netns: string, args: string[]): number {
    const pid = startDetached(name, netns, process.execPath, args, this.state.paths.logs);
    this.state.pids[name] = pid;
    writeState(this.state);
    return pid;
  }

  /** A Node.js script of tools/, with this process's loader flags (tsx in the tests). */
  private tool(name: string, netns: string, script: string, args: string[]): number {
    return this.start(name, netns, [...process.execArgv, script, ...args]);
  }

  /** Starts `tacmesh diode recv` (again, after a kill) or `send`; returns once its stats are written. */
  async startDiode(role: 'recv' | 'send'): Promise<void> {
    const since = Date.now();
    const p = this.state.paths;
    const [netns, config, stats] =
      role === 'recv'
        ? [this.state.netns.recv, p.recvConfig, p.recvStats]
        : [this.state.netns.send, p.sendConfig, p.sendStats];
    this.start(`diode-${role}`, netns, [BIN, 'diode', role, '-c', config]);
    await written(stats, since, `tacmesh diode ${role}`, this.running);
  }

  private async startTraffic(options: DemoOptions): Promise<void> {
    const { tools } = this.state.paths;
    const logStream = scriptPath(import.meta.url, './tools/log-stream');
    const udpStream = scriptPath(import.meta.url, './tools/udp-stream');
    const since = Date.now();
    this.tool('log-sink', this.state.netns.recv, logStream, [
      'sink',
      '127.0.0.1',
      String(PORTS.log),
      tools.logSink,
    ]);
    this.tool('udp-sink', this.state.netns.recv, udpStream, [
      'sink',
      '127.0.0.1',
      String(PORTS.udp),
      tools.udpSink,
    ]);
    await written(tools.logSink, since, 'the log destination', this.running);
    await written(tools.udpSink, since, 'the telemetry destination', this.running);
    this.tool('log-source', this.state.netns.send, logStream, [
      'source',
      '127.0.0.1',
      String(PORTS.log),
      String(options.logLinesPerS ?? 20),
      '10',
      tools.logSource,
    ]);
    this.tool('udp-source', this.state.netns.send, udpStream, [
      'source',
      '127.0.0.1',
      String(PORTS.udp),
      String(options.udpPerS ?? 50),
      tools.udpSource,
    ]);
  }

  /**
   * Ends the two traffic sources (their last counters written) and gives what they sent a
   * moment to land: the closing report then counts both ends of the same traffic.
   */
  async stopSources(): Promise<void> {
    const pids = ['log-source', 'udp-source'].flatMap((name) => {
      const pid = this.state.pids[name];
      delete this.state.pids[name];
      return pid === undefined ? [] : [pid];
    });
    writeState(this.state);
    await stopAll(pids).catch(() => undefined);
    await sleep(1500);
  }

  /**
   * Changes the link live: rate by the link's token bucket and the sender's pace (send.yaml
   * rewritten, SIGHUP), loss and burst by linkem's map. A faster link takes the new rate
   * before the sender, a slower one after, so the sender never outruns it.
   */
  async setLink(change: Partial<LinkSetting>): Promise<LinkSetting> {
    const next = { ...this.state.link, ...change };
    if (!(next.rateMbit > 0 && next.rateMbit <= 10_000))
      throw new Error(`rate must be 0-10000 Mbit/s, not ${next.rateMbit}`);
    if (!(next.lossPct >= 0 && next.lossPct <= 50))
      throw new Error(`loss must be 0-50 %, not ${next.lossPct}`);
    if (!(Number.isInteger(next.burst) && next.burst >= 1 && next.burst <= 1000))
      throw new Error(`burst must be a whole number of packets 1-1000, not ${next.burst}`);
    this.link.forward.setLoss(next.lossPct / 100, next.burst);
    if (next.rateMbit !== this.state.link.rateMbit) {
      const shaper = () => limitRate(this.lab, this.state.netns.send, this.state.iface.send, next.rateMbit);
      const pace = () => {
        writeConfig(
          this.state.paths.sendConfig,
          sendConfig(this.state.paths, next, this.state.fec),
          sendSchema,
        );
        const pid = this.state.pids['diode-send'];
        if (pid) process.kill(pid, 'SIGHUP');
      };
      if (next.rateMbit > this.state.link.rateMbit) {
        await shaper();
        pace();
      } else {
        pace();
        await sleep(200);
        await shaper();
      }
    }
    this.state.link = next;
    writeState(this.state);
    return next;
  }

  /** kill -9 of the receiver: what it had not saved is lost, the link's frames meanwhile too. */
  async killReceiver(): Promise<void> {
    const pid = this.state.pids['diode-recv'];
    if (pid === undefined) return;
    delete this.state.pids['diode-recv'];
    writeState(this.state);
    process.kill(pid, 'SIGKILL');
    while (isAlive(pid)) await sleep(20);
  }

  /** The link's kernel counters: what went forward (and was lost), and what the receiving side tried to send back. */
  linkCounters() {
    return { forward: this.link.forward.counts(), backward: this.link.backward.counts() };
  }

  /** Probes from the receiving side again, while the demo runs. */
  prove(): Promise<OneWayProof> {
    return proveOneWay(this.lab, {
      protectedSide: { netns: this.state.netns.send, addr: SEND_ADDR },
      sender: { netns: this.state.netns.send },
      receiver: { netns: this.state.netns.recv, addr: RECV_ADDR },
      port: PORTS.probe,
    });
  }

  /**
   * A file of `bytes` pseudo-random bytes put into the outbox as a writer should (`.name`,
   * then renamed), so the sender never takes half of it. Returns its SHA-256.
   */
  drop(name: string, bytes: number): string {
    const key = createHash('sha256').update(`${name}-${Date.now()}`).digest();
    const data = createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(bytes));
    const tmp = join(this.state.paths.outbox, `.${name}`);
    writeFileSync(tmp, data);
    renameSync(tmp, join(this.state.paths.outbox, name));
    return createHash('sha256').update(data).digest('hex');
  }

  logTail(name: string): string {
    return logTail(this.state.paths.logs, name);
  }

  async down(progress: Progress): Promise<void> {
    await teardown(this.state, this.lab, this.link, progress);
  }
}

async function teardown(
  state: DemoState,
  lab?: Lab,
  link?: OneWayLink,
  progress: Progress = () => undefined,
) {
  const pids = Object.values(state.pids).reverse();
  progress(`stopping ${pids.length} processes`);
  const stopped = await stopAll(pids).catch((err: Error) => err);
  try {
    link?.close();
  } catch {
    // its namespace may be gone already; the filters go with it
  }
  await lab?.cleanup();
  const report = await cleanLeftovers(new RegExp(`^${state.prefix}`));
  progress(
    `removed the namespaces${report.namespaces.length ? ` (${report.namespaces.join(', ')})` : ''} and ${state.paths.dir}`,
  );
  rmSync(state.paths.dir, { recursive: true, force: true });
  if (readDemoState()?.prefix === state.prefix) rmSync(STATE_FILE, { force: true });
  if (stopped instanceof Error) throw stopped;
}

/**
 * `tacmesh diode demo down`: the demo in the foreground is asked to end (it removes all it
 * made); whatever is still there after it, or after a demo that was killed, is removed here.
 */
export async function demoDown(progress: Progress): Promise<void> {
  requireRoot();
  const state = readDemoState();
  if (!state) {
    progress('no diode demo is up (no state file); `tacmesh testbed clean` removes leftovers of a crash');
    return;
  }
  if (state.controller !== process.pid && isAlive(state.controller)) {
    progress(`asking the demo (PID ${state.controller}) to end`);
    process.kill(state.controller, 'SIGTERM');
    const deadline = Date.now() + 20_000;
    while (isAlive(state.controller) && Date.now() < deadline) await sleep(100);
  }
  const left = readDemoState();
  if (left?.prefix !== state.prefix && !existsSync(state.paths.dir)) {
    progress('done: nothing of the demo is left');
    return;
  }
  await teardown(left ?? state, undefined, undefined, progress);
  progress('done: nothing of the demo is left');
}
