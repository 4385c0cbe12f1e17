/**
 * A real tower process (`tacmesh tower run`, from the sources) on loopback with its own CA,
 * and stand-in nodes that speak the control plane directly (gRPC, mutual TLS, each on a
 * connection of its own): what a hostile or faulty node can send, without namespaces or eBPF.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { stringify } from 'yaml';
import { initCa, issue, pkiPaths } from '../../src/pki/ca.js';
import {
  type NodeMessage,
  proto,
  SCHEMA_VERSION,
  type TowerClient,
  type TowerMessage__Output,
} from '../../src/proto/index.js';
import { type ApiDeps, buildApi } from '../../src/tower/api/server.js';
import { createToken, type Role, Tokens } from '../../src/tower/api/tokens.js';
import { LocalityMap } from '../../src/tower/ingest/locality.js';
import { Registry } from '../../src/tower/registry.js';
import { DuckStore } from '../../src/tower/store/duckdb.js';

export { sleep, waitFor } from './wait.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
// biome-ignore lint/suspicious/noExplicitAny: the API's JSON, checked field by field by the tests
export type Json = any;

/** `tacmesh …` from the sources, to completion. */
export function tacmesh(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/**
 * The query API alone, in this process, over an in-memory store: `app.request()` answers;
 * one token per [name, role] given. `extra` adds dependencies made from the store.
 */
export async function apiAlone(
  holders: [string, Role][],
  extra: (store: DuckStore) => Promise<Partial<ApiDeps>> = async () => ({}),
) {
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-api-'));
  const store = await DuckStore.open(':memory:', { retentionDays: 7, rollupRetentionDays: 90 });
  const tokens = holders.map(([name, role]) => createToken(`${dir}/tokens.yaml`, name, role));
  const places = new LocalityMap(null);
  const app = buildApi({
    store,
    registry: new Registry(store, places),
    places,
    tokens: Tokens.load(`${dir}/tokens.yaml`),
    health: () => ({}),
    ...(await extra(store)),
  });
  return {
    app,
    store,
    tokens,
    close(): void {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ApiReply {
  status: number;
  body: Json;
  headers: Record<string, string | string[] | undefined>;
}

export class TowerRig {
  readonly dir = mkdtempSync(join(tmpdir(), 'tacmesh-tower-rig-'));
  readonly pki = `${this.dir}/pki`;
  private child: ChildProcess | undefined;
  private log = '';
  controlPort = 0;
  apiPort = 0;
  operator = '';
  viewer = '';

  /** Makes the CA, the tower's certificate and one for each node name, and starts the tower. */
  async start(nodes: string[], towerYaml: Record<string, unknown> = {}): Promise<void> {
    await this.prepare(nodes);
    await this.launch(towerYaml);
  }

  /**
   * The CA, the tower's certificate, one for each node name, and the tokens; no tower yet.
   * With `peer`, its CA and certificates (a standby tower of the same nodes).
   */
  async prepare(nodes: string[], peer?: TowerRig): Promise<void> {
    if (peer) cpSync(peer.pki, this.pki, { recursive: true });
    else {
      await initCa(this.pki);
      await issue(this.pki, 'tower', 'tower');
      for (const n of nodes) await issue(this.pki, 'node', n);
    }
    this.operator = createToken(`${this.dir}/tokens.yaml`, 'op', 'operator');
    this.viewer = createToken(`${this.dir}/tokens.yaml`, 'watcher', 'viewer');
  }

  /**
   * Stops the tower and starts it again on the same store, with other tower.yaml fields
   * (and `meanwhile` done while it is stopped).
   */
  async restart(towerYaml: Record<string, unknown> = {}, meanwhile?: () => Promise<void>): Promise<void> {
    await this.halt();
    await meanwhile?.();
    await this.launch(towerYaml);
  }

  /** Starts the tower (after prepare(), or again after halt()). */
  async launch(towerYaml: Record<string, unknown>): Promise<void> {
    const config = {
      control: { listen: '127.0.0.1:0' },
      api: { listen: '127.0.0.1:0' },
      pki: { dir: this.pki, name: 'tower' },
      store: { path: `${this.dir}/tower.duckdb` },
      tokens: `${this.dir}/tokens.yaml`,
      ...towerYaml,
    };
    writeFileSync(`${this.dir}/tower.yaml`, stringify(config));
    this.log = '';
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, 'tower', 'run', '-c', `${this.dir}/tower.yaml`],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, TACMESH_LOG_LEVEL: process.env.TACMESH_LOG_LEVEL ?? 'info' },
      },
    );
    this.child = child;
    const ready = new Promise<void>((resolve, reject) => {
      child.stderr?.on('data', (d: Buffer) => {
        this.log += d.toString();
        if (process.env.TACMESH_TEST_VERBOSE) process.stderr.write(`[tower] ${d}`);
        const m = /control plane on port (\d+), API on https port (\d+)/.exec(this.log);
        if (m) {
          this.controlPort = Number(m[1]);
          this.apiPort = Number(m[2]);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`the tower exited (${code}):\n${this.log}`)));
    });
    await ready;
  }

  /** What the tower logged so far. */
  get logText(): string {
    return this.log;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The API over HTTPS, trusting only our CA; `token: null` sends none. */
  api(
    path: string,
    init: {
      method?: string;
      body?: string;
      token?: string | null;
      cookie?: string;
      /** a loopback source address other than 127.0.0.1 */
      from?: string;
      headers?: Record<string, string>;
    } = {},
  ): Promise<ApiReply> {
    const token = init.token === undefined ? this.operator : init.token;
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: this.apiPort,
          path: `/api/v1/${path}`,
          method: init.method ?? 'GET',
          ca: readFileSync(pkiPaths(this.pki).caCert),
          servername: 'localhost',
          ...(init.from ? { localAddress: init.from } : {}),
          headers: {
            'content-type': 'application/json',
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(init.cookie ? { cookie: init.cookie } : {}),
            ...init.headers,
          },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => {
            text += d.toString();
          });
          res.on('end', () => {
            let body: Json = text;
            try {
              body = JSON.parse(text);
            } catch {
              // not JSON: kept as text
            }
            resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
          });
        },
      );
      req.on('error', reject);
      req.end(init.body);
    });
  }

  async health(): Promise<Json> {
    return (await this.api('health')).body.control;
  }

  /** A stand-in node with the certificate of `name` (or another's files). */
  node(name: string, files: { cert?: string; key?: string } = {}): FakeNode {
    const paths = pkiPaths(this.pki);
    const node = new FakeNode(name, `127.0.0.1:${this.controlPort}`, {
      ca: readFileSync(paths.caCert),
      cert: readFileSync(files.cert ?? paths.cert(name)),
      key: readFileSync(files.key ?? paths.key(name)),
    });
    this.nodes.push(node);
    return node;
  }

  private readonly nodes: FakeNode[] = [];

  async stop(): Promise<void> {
    await this.halt();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Kills the tower with SIGKILL (no clean-up of its own), and waits for its exit. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** Stops the tower (SIGTERM) and its stand-in nodes, keeping its directory and store. */
  async halt(): Promise<void> {
    for (const n of this.nodes.splice(0)) n.close();
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  }
}

export interface HelloFields {
  subnets?: string[];
  slices?: { name: string; subnets: string[]; bridge: string }[];
  clockMs?: number;
}

/** What became of a stream's hello. */
export type HelloResult = { welcome: true; storedSeq: number } | { welcome: false; reason: string };

/** A flow record of a stand-in node. */
export function flow(seq: number, src: string, dst: string, lastSeenMs = Date.now()) {
  return {
    seq,
    iface: 'eth0',
    direction: 'EGRESS' as const,
    ipVersion: 4,
    src,
    dst,
    srcPort: 40000,
    dstPort: 80,
    protocol: 6,
    packets: 1,
    bytes: 100,
    tcpFlags: 0,
    dscp: 0,
    firstSeenMs: lastSeenMs - 1000,
    lastSeenMs,
    ifaceKind: 'container',
  };
}

export class NodeStream {
  private readonly acks: number[] = [];
  private readonly waiters: (() => void)[] = [];
  ended: string | undefined;
  readonly result: Promise<HelloResult>;

  constructor(
    readonly call: grpc.ClientDuplexStream<NodeMessage, TowerMessage__Output>,
    node: string,
    hello: HelloFields,
  ) {
    this.result = new Promise((resolve) => {
      call.on('data', (m: TowerMessage__Output) => {
        if (m.welcome) resolve({ welcome: true, storedSeq: Number(m.welcome.storedSeq) });
        if (m.refusal) resolve({ welcome: false, reason: m.refusal.reason });
        if (m.ack) this.acks.push(Number(m.ack.lastSeq));
        this.wake();
      });
      const end = (why: string) => {
        this.ended ??= why;
        resolve({ welcome: false, reason: why });
        this.wake();
      };
      call.on('error', (e: Error) => end(e.message));
      call.on('end', () => end('stream ended'));
    });
    call.write({
      hello: {
        schemaVersion: SCHEMA_VERSION,
        node,
        subnets: hello.subnets ?? [],
        slices: hello.slices ?? [],
        position: { lat: 0, lon: 0 },
        software: 'stand-in',
        clockMs: hello.clockMs ?? Date.now(),
        lastSeq: 0,
      },
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(msg: NodeMessage): void {
    this.call.write(msg);
  }

  /** Sends a batch of flows and waits for its ack (or the stream's end). */
  async batch(flows: ReturnType<typeof flow>[], firstSeq?: number, lastSeq?: number): Promise<boolean> {
    const seqs = flows.map((f) => f.seq);
    const last = lastSeq ?? Math.max(...seqs);
    this.send({
      batch: { firstSeq: firstSeq ?? Math.min(...seqs), lastSeq: last, flows, http: [], stats: [] },
    });
    while (!this.acks.includes(last)) {
      if (this.ended) return false;
      await new Promise<void>((r) => this.waiters.push(r));
    }
    return true;
  }

  /** Resolves when the stream ends; its reason. */
  async closed(): Promise<string> {
    while (!this.ended) await new Promise<void>((r) => this.waiters.push(r));
    return this.ended;
  }

  close(): void {
    this.call.end();
    this.call.cancel();
  }
}

export class FakeNode {
  private readonly clients: TowerClient[] = [];

  constructor(
    readonly name: string,
    private readonly target: string,
    private readonly tls: { ca: Buffer; cert: Buffer; key: Buffer },
  ) {}

  /** A stream on a connection of its own, with a hello. */
  connect(hello: HelloFields = {}): NodeStream {
    const client = new proto.tacmesh.v1.Tower(
      this.target,
      grpc.credentials.createSsl(this.tls.ca, this.tls.key, this.tls.cert),
      {
        'grpc.ssl_target_name_override': 'tower',
        'grpc.default_authority': 'tower',
        'grpc.use_local_subchannel_pool': 1,
        'grpc.max_send_message_length': 64 * 1024 * 1024,
      },
    ) as unknown as TowerClient;
    this.clients.push(client);
    return new NodeStream(client.Connect(), this.name, hello);
  }

  close(): void {
    for (const c of this.clients.splice(0)) (c as unknown as grpc.Client).close();
  }
}
