/**
 * Real NATS servers (Debian's nats-server) for tests and benchmarks: one, or a JetStream
 * cluster of three, on loopback ports, each with its own store directory; stopped, or
 * killed with SIGKILL, by the PID this kit started; started again on the same directory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'nats';
import { stopChild } from '../../src/netlab/lab.js';
import { requirePrograms } from '../../src/shared/programs.js';
import { freePort } from './free-port.js';

export interface NatsServerOptions {
  /** Its server_name (default n1): servers joined as leaf nodes must have names of their own. */
  name?: string;
  /** The JetStream domain of this server. */
  domain?: string;
  /** TLS with client certificates required (files of the tacmesh CA). */
  tls?: NatsTlsFiles;
  /** Extra lines of nats-server configuration. */
  extra?: string;
}

/** One nats-server process: its client URL, its PID, and how to stop or kill it. */
export class NatsServer {
  private child: ChildProcess | undefined;
  private log = '';

  constructor(
    readonly name: string,
    readonly port: number,
    readonly dir: string,
    private readonly config: string,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the server (again, on the same store) and waits until it says it is ready. */
  async start(): Promise<void> {
    requirePrograms(['nats-server'], "the towers' bus");
    writeFileSync(`${this.dir}/server.conf`, this.config);
    this.log = '';
    const child = spawn('nats-server', ['-c', `${this.dir}/server.conf`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`nats-server ${this.name} not ready in 20 s:\n${this.log}`)),
        20_000,
      );
      child.stderr?.on('data', (d: Buffer) => {
        this.log = (this.log + d.toString()).slice(-20_000);
        if (process.env.TACMESH_TEST_VERBOSE) process.stderr.write(`[nats ${this.name}] ${d}`);
        if (this.log.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server ${this.name} exited (${code}):\n${this.log}`));
      });
    });
  }

  get logText(): string {
    return this.log;
  }

  /** SIGKILL, and waits for the exit. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    if (this.child && this.running) await stopChild(this.child);
  }
}

function serverConfig(
  name: string,
  port: number,
  dir: string,
  o: NatsServerOptions,
  cluster?: string,
): string {
  const tls = o.tls ? `${tlsBlock(o.tls, ', verify: true')}\n` : '';
  return `server_name: ${name}
listen: 127.0.0.1:${port}
jetstream {
  store_dir: "${dir}/js"
${o.domain ? `  domain: ${o.domain}\n` : ''}}
${tls}${cluster ?? ''}${o.extra ?? ''}
`;
}

/** TLS files of the tacmesh CA for a server: the CA, and the server's own certificate and key. */
export interface NatsTlsFiles {
  ca: string;
  cert: string;
  key: string;
}

function tlsBlock(t: NatsTlsFiles, more = ''): string {
  return `tls { ca_file: "${t.ca}", cert_file: "${t.cert}", key_file: "${t.key}"${more} }`;
}

/**
 * A division's server's side of the echelons (docs/bus.md): it takes leaf connections from
 * brigades' servers on `port`, over TLS with certificates of the tacmesh CA only, each
 * certificate mapped to a leaf user (`CN=<name>,OU=tower,O=tacmesh`); any other is refused.
 * It advertises `advertise` as its leaf address, the one its brigades reach it at (here: the
 * relay the test cuts), never its listener's own: a brigade told of that would go round the cut.
 */
export function leafHubConfig(
  port: number,
  tls: NatsTlsFiles,
  brigadeCerts: string[],
  advertise: string,
): string {
  const users = brigadeCerts.map((n) => `{ user: "CN=${n},OU=tower,O=tacmesh" }`).join(', ');
  return `leafnodes {
  listen: 127.0.0.1:${port}
  advertise: "${advertise}"
  ${tlsBlock(tls, ', verify_and_map: true')}
  authorization { users: [ ${users} ] }
}
`;
}

/** A brigade's server as a leaf node of the division's at `hostPort`, over TLS with its own certificate. */
export function leafRemoteConfig(hostPort: string, tls: NatsTlsFiles): string {
  return `leafnodes { remotes [ { url: "tls://${hostPort}", ${tlsBlock(tls)} } ] }
`;
}

/** A set of servers started together; `stop()` stops them all and removes their directories. */
export class NatsSet {
  constructor(
    readonly servers: NatsServer[],
    private readonly dir: string,
  ) {}

  /** Every client URL, comma-separated (what `bus.url` takes). */
  get url(): string {
    return this.servers.map((s) => s.url).join(',');
  }

  async stop(): Promise<void> {
    for (const s of this.servers) await s.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One JetStream server on a loopback port. */
export async function startNats(o: NatsServerOptions = {}): Promise<NatsSet> {
  const dir = mkdtempSync('/tmp/tacmesh-nats-');
  const port = await freePort();
  const name = o.name ?? 'n1';
  const server = new NatsServer(name, port, dir, serverConfig(name, port, dir, o));
  const set = new NatsSet([server], dir);
  try {
    await server.start();
  } catch (err) {
    await set.stop();
    throw err;
  }
  return set;
}

/** A JetStream cluster of three servers on loopback (for R3 streams). */
export async function startNatsCluster(o: NatsServerOptions = {}): Promise<NatsSet> {
  const dir = mkdtempSync('/tmp/tacmesh-nats-cluster-');
  const ports = [await freePort(), await freePort(), await freePort()];
  const routes = [await freePort(), await freePort(), await freePort()];
  const clusterName = `tm${process.pid}`;
  const servers = ports.map((port, i) => {
    const name = `c${i + 1}`;
    const sdir = `${dir}/${name}`;
    const cluster = `cluster {
  name: ${clusterName}
  listen: 127.0.0.1:${routes[i]}
  routes: [${routes.map((r) => `nats-route://127.0.0.1:${r}`).join(', ')}]
}
`;
    return new NatsServer(name, port, sdir, serverConfig(name, port, sdir, o, cluster));
  });
  for (const s of servers) mkdirSync(s.dir, { recursive: true });
  const set = new NatsSet(servers, dir);
  try {
    await Promise.all(servers.map((s) => s.start()));
    await jetStreamReady(set.url);
  } catch (err) {
    await set.stop();
    throw err;
  }
  return set;
}

/** Waits until the cluster's JetStream answers (its metadata leader is elected). */
export async function jetStreamReady(url: string, timeoutMs = 20_000): Promise<void> {
  const nc = await connect({ servers: url.split(',') });
  try {
    const jsm = await nc.jetstreamManager({ checkAPI: false });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await jsm.getAccountInfo();
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`JetStream not ready on ${url}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    await nc.close();
  }
}
