/**
 * A diode on an emulated one-way link, for the tests and the benchmark: two namespaces
 * (send, recv) joined by `oneWayLink`, the sender and receiver run as `tacmesh diode`
 * processes with configs written to a temporary directory, a TCP sink (the destination)
 * in the receiver's namespace and TCP sources (the clients) in the sender's.
 */
import { createCipheriv, createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { sha256File } from '../../../src/diode/disk.js';
import { generateKey } from '../../../src/diode/protocol/auth.js';
import { Lab } from '../../../src/netlab/lab.js';
import { type OneWayLink, oneWayLink } from '../../../src/netlab/link.js';
import { Tool } from '../tools/index.js';

const here = (rel: string) => fileURLToPath(new URL(`${rel}.ts`, import.meta.url));
const MAIN = here('../../../src/cli/main');
export const toolScript = (name: string) => here(`./${name}`);

export const LINK_PORT = 47000;

export interface SinkConnection {
  bytes: number;
  sha256: string;
  outcome: string;
  samples: [number, number][];
}

export interface SourceResult {
  sent: number;
  sha256: string;
  seconds: number;
  outcome: string;
}

/** A running `tacmesh diode send|recv` (or tool) with helpers to wait for it and stop it. */
export class Proc {
  readonly tool: Tool;
  /** The config file of a `tacmesh diode` process. */
  configFile = '';
  constructor(
    readonly lab: Lab,
    child: ReturnType<Lab['spawnNode']>,
  ) {
    this.tool = new Tool(child);
  }

  /** Waits for "ready"; a process that is not ready in time is killed, so it holds no port after. */
  async ready(timeoutMs = 30_000): Promise<void> {
    try {
      await this.tool.line('ready', timeoutMs);
    } catch (err) {
      if (this.tool.child.exitCode === null) await this.kill();
      throw err;
    }
  }

  /** JSON objects printed so far, one per line. */
  lines<T>(): T[] {
    return this.tool.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as T);
  }

  /** SIGTERM, then the JSON of its last line. */
  async stop<T>(): Promise<T> {
    this.tool.child.kill('SIGTERM');
    return this.tool.result<T>();
  }

  /** Sends `signal` to the process (a tool's own control: tcp-sink's SIGUSR1). */
  signal(signal: NodeJS.Signals): void {
    this.tool.child.kill(signal);
  }

  kill(): Promise<number | null> {
    this.tool.child.kill('SIGKILL');
    return this.tool.exited;
  }
}

export class DiodeLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'tacmesh-diode-test-'));
  private constructor(
    readonly lab: Lab,
    readonly sendNs: string,
    readonly recvNs: string,
    readonly link: OneWayLink,
    readonly sendAddr: string,
    readonly recvAddr: string,
  ) {}

  /** Namespaces and the link, on 10.77.<subnet>.0/24 (the diode's tests use 200-220). */
  static async create(options: { subnet: number; rateMbit?: number; mtu?: number }): Promise<DiodeLab> {
    const lab = new Lab();
    try {
      const sendNs = await lab.netns('dsend', { ipv6: false });
      const recvNs = await lab.netns('drecv', { ipv6: false });
      const sendAddr = `10.77.${options.subnet}.1`;
      const recvAddr = `10.77.${options.subnet}.2`;
      const link = await oneWayLink(lab, sendNs, recvNs, {
        fromAddr: `${sendAddr}/24`,
        toAddr: `${recvAddr}/24`,
        ...(options.rateMbit ? { rateMbit: options.rateMbit } : {}),
      });
      if (options.mtu) {
        await lab.ip(sendNs, 'link', 'set', link.fromIface, 'mtu', String(options.mtu));
        await lab.ip(recvNs, 'link', 'set', link.toIface, 'mtu', String(options.mtu));
      }
      return new DiodeLab(lab, sendNs, recvNs, link, sendAddr, recvAddr);
    } catch (err) {
      await lab.cleanup();
      throw err;
    }
  }

  private writeConfig(name: string, config: object): string {
    const file = join(this.dir, name);
    writeFileSync(file, stringify(config));
    return file;
  }

  private diode(ns: string, role: 'send' | 'recv', config: object): Proc {
    const file = this.writeConfig(
      `${role}-${Date.now()}-${Math.random().toString(36).slice(2)}.yaml`,
      config,
    );
    const child = this.lab.spawnNode(ns, MAIN, ['diode', role, '--config', file], {
      env: { ...process.env, TACMESH_LOG_LEVEL: process.env.TACMESH_LOG_LEVEL ?? 'warn' },
    });
    const p = new Proc(this.lab, child);
    p.configFile = file;
    return p;
  }

  /** Runs another `tacmesh diode` subcommand in the sender's namespace to its end. */
  async cli(args: string[]): Promise<Tool> {
    const tool = new Tool(
      this.lab.spawnNode(this.sendNs, MAIN, ['diode', ...args], {
        env: { ...process.env, TACMESH_LOG_LEVEL: process.env.TACMESH_LOG_LEVEL ?? 'warn' },
      }),
    );
    await tool.exited;
    return tool;
  }

  /** A UDP relay in the sender's namespace on 127.0.0.1:`port`, onto the link (udp-relay.ts). */
  async relay(port: number, options: string[] = []): Promise<Proc> {
    const p = new Proc(
      this.lab,
      this.lab.spawnNode(this.sendNs, toolScript('udp-relay'), [
        String(port),
        this.recvAddr,
        String(LINK_PORT),
        '--from',
        this.sendAddr,
        ...options,
      ]),
    );
    await p.ready();
    return p;
  }

  /** A key file with one fresh key (mode 0600). */
  keyFile(name = `keys-${Date.now()}`): string {
    const file = join(this.dir, name);
    generateKey(file, 1);
    return file;
  }

  /** A file of `bytes` seeded pseudo-random bytes; returns its path and SHA-256. */
  makeFile(name: string, bytes: number, seed = name): { path: string; sha256: string; size: number } {
    const path = join(this.dir, name);
    const key = createHash('sha256').update(seed).digest();
    const stream = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
    const hash = createHash('sha256');
    const zeros = Buffer.alloc(1 << 20);
    const fd = openSync(path, 'w');
    try {
      for (let done = 0; done < bytes; ) {
        const n = Math.min(zeros.length, bytes - done);
        const chunk = stream.update(zeros.subarray(0, n));
        hash.update(chunk);
        writeSync(fd, chunk);
        done += n;
      }
    } finally {
      closeSync(fd);
    }
    return { path, sha256: hash.digest('hex'), size: bytes };
  }

  /** Waits until `path` exists; returns its SHA-256. */
  async arrived(path: string, timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(path)) {
      if (Date.now() > deadline) throw new Error(`${path} did not arrive within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return sha256File(path);
  }

  /**
   * Starts a receiver on the link; `config` is merged over the defaults (listen, stats file,
   * and `insecure: true` unless `config` gives both auth and tcp.allow: most tests run the
   * link open, on their own namespaces).
   */
  async receiver(config: Record<string, unknown> = {}): Promise<Proc & { statsFile: string }> {
    const statsFile = join(this.dir, `recv-stats-${Date.now()}.json`);
    const secure =
      config.auth !== undefined && (config.tcp as { allow?: unknown } | undefined)?.allow !== undefined;
    const p = this.diode(this.recvNs, 'recv', {
      insecure: !secure,
      link: { listen: `${this.recvAddr}:${LINK_PORT}` },
      stats: { file: statsFile, everyMs: 200 },
      stateDir: join(this.dir, `recv-state-${Date.now()}`),
      ...config,
    });
    await p.ready();
    return Object.assign(p, { statsFile });
  }

  /** A sender's config over the defaults (link to the receiver at 400 Mbit/s, a store, a stats file). */
  private senderConfig(config: Record<string, unknown>, link: Record<string, unknown>) {
    const statsFile = join(this.dir, `send-stats-${Date.now()}.json`);
    return {
      statsFile,
      config: {
        link: { to: `${this.recvAddr}:${LINK_PORT}`, from: this.sendAddr, rateMbit: 400, ...link },
        store: { dir: join(this.dir, 'store') },
        stats: { file: statsFile, everyMs: 200 },
        ...config,
      },
    };
  }

  /** Starts a sender; `config` must give at least `tcp` or `udp` services. */
  async sender(
    config: Record<string, unknown>,
    link: Record<string, unknown> = {},
  ): Promise<Proc & { statsFile: string }> {
    const c = this.senderConfig(config, link);
    const p = this.diode(this.sendNs, 'send', c.config);
    await p.ready();
    return Object.assign(p, { statsFile: c.statsFile });
  }

  /** Writes a sender's config (as sender() would) without starting one: for the other commands. */
  senderConfigFile(config: Record<string, unknown>, link: Record<string, unknown> = {}): string {
    return this.writeConfig(
      `send-${Date.now()}-${Math.random().toString(36).slice(2)}.yaml`,
      this.senderConfig(config, link).config,
    );
  }

  /** The TCP destination, in the receiver's namespace on its loopback; `readRate` (bytes/s) makes it slow. */
  async sink(port: number, readRate?: number): Promise<Proc> {
    const p = new Proc(
      this.lab,
      this.lab.spawnNode(this.recvNs, toolScript('tcp-sink'), [
        '127.0.0.1',
        String(port),
        ...(readRate ? ['--read-rate', String(readRate)] : []),
      ]),
    );
    await p.ready();
    return p;
  }

  /** A TCP client in the sender's namespace, sending to the sender's service on its loopback. */
  startSource(port: number, amount: number | { seconds: number }, seed = 'tacmesh'): Proc {
    const what = typeof amount === 'number' ? [String(amount)] : ['--seconds', String(amount.seconds)];
    return new Proc(
      this.lab,
      this.lab.spawnNode(this.sendNs, toolScript('tcp-source'), ['127.0.0.1', String(port), ...what, seed]),
    );
  }

  /** Runs a TCP client to its end; resolves with what it sent. */
  async source(port: number, amount: number | { seconds: number }, seed = 'tacmesh'): Promise<SourceResult> {
    const p = this.startSource(port, amount, seed);
    await p.tool.exited;
    const [r] = p.lines<SourceResult>().slice(-1);
    if (!r) throw new Error(`tcp-source printed nothing: ${p.tool.stdout}`);
    return r;
  }

  /** Polls a stats file until `until` holds for it. */
  async waitStats<T>(file: string, until: (s: T) => boolean, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: T | undefined;
    while (Date.now() < deadline) {
      try {
        last = JSON.parse(readFileSync(file, 'utf8')) as T;
        if (until(last)) return last;
      } catch {
        // not written yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`stats in ${file} never matched within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
  }

  async close(): Promise<void> {
    try {
      this.link.close();
    } finally {
      await this.lab.cleanup();
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** Waits until the sink has printed `n` connections; returns them. */
export async function connections(sink: Proc, n: number, timeoutMs = 60_000): Promise<SinkConnection[]> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const got = sink.lines<SinkConnection>();
    if (got.length >= n) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the sink saw ${sink.lines().length} of ${n} connections within ${timeoutMs} ms`);
}
