/**
 * The dashboard's test rig, shared by its end-to-end test and bench/dashboard: a real node
 * (`tacmesh node run`, eBPF) in a namespace feeding a real tower (this process) over its
 * management veth, with HTTP servers to talk to inside the node, at a stand-in for a second
 * node's subnet, and outside — and Debian's Chromium, driven by playwright-core, logged in.
 *
 *   host (tower, Chromium)  ══ mgmt 10.77.<b+3>.0/24 ══  n1 (tacmesh node run)
 *                                                        ├─ br: ca .1, cb .2   10.77.<b>.0/24   node1
 *                                                        ├─ t2: n2 .1          10.77.<b+1>.0/24 node2 (site file)
 *                                                        └─ tx: ext .1         10.77.<b+2>.0/24 outside (site place)
 *
 * Positions: node1 in Seoul; node2's subnet ~15 km away (Seongnam); the outside network at
 * "HQ" ~30 km away (Suwon) — a map that shows the world only would draw a single dot.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { Lab } from '../../src/netlab/lab.js';
import { initCa, issue } from '../../src/pki/ca.js';
import { run } from '../../src/shared/exec.js';
import { requirePrograms } from '../../src/shared/programs.js';
import { createToken } from '../../src/tower/api/tokens.js';
import { Tower } from '../../src/tower/tower.js';
import { Tool, toolPath } from './tools/index.js';

const BIN = new URL('../../bin/tacmesh.js', import.meta.url).pathname;
export const CHROMIUM = '/usr/bin/chromium';
export const POSITIONS = {
  node1: { lat: 37.5665, lon: 126.978 },
  node2: { lat: 37.42, lon: 127.1265 },
  hq: { lat: 37.2636, lon: 127.0286 },
};

import { bpfArgs } from './node-tower.js';
import { sleep, waitFor } from './wait.js';

export { sleep, waitFor };

export interface RigAddresses {
  ca: string;
  cb: string;
  n2: string;
  ext: string;
}

export class DashboardRig {
  lab!: Lab;
  tower!: Tower;
  dir = '';
  operator = '';
  viewer = '';
  nodeLog = '';
  private nodeProc: ChildProcess | undefined;
  private mgmtHost = '';
  private namespaces: Record<'n1' | 'ca' | 'cb' | 'n2' | 'ext', string> = {
    n1: '',
    ca: '',
    cb: '',
    n2: '',
    ext: '',
  };
  readonly ip: RigAddresses;

  /** `base`: the third octet of the first of four /24s (10.77.base..base+3). */
  constructor(private readonly base: number) {
    if (base < 150 || base + 3 > 170)
      throw new Error('the dashboard rig uses 10.77.150.0/24 .. 10.77.170.0/24 only');
    this.ip = { ca: this.addr(0, 1), cb: this.addr(0, 2), n2: this.addr(1, 1), ext: this.addr(2, 1) };
  }

  private addr(net: number, host: number): string {
    return `10.77.${this.base + net}.${host}`;
  }

  private net(net: number): string {
    return `10.77.${this.base + net}.0/24`;
  }

  get url(): string {
    return `https://127.0.0.1:${this.tower.api.port}`;
  }

  async start(options: { intervalMs?: number } = {}): Promise<void> {
    this.dir = mkdtempSync('/tmp/tacmesh-dashboard-');
    const pki = `${this.dir}/pki`;
    this.mgmtHost = this.addr(3, 254);
    await initCa(pki);
    await issue(pki, 'tower', 'tower', { altNames: [this.mgmtHost] });
    await issue(pki, 'node', 'node1');
    this.operator = createToken(`${this.dir}/tokens.yaml`, 'olivia', 'operator');
    this.viewer = createToken(`${this.dir}/tokens.yaml`, 'victor', 'viewer');
    const { node2, hq } = POSITIONS;
    writeFileSync(
      `${this.dir}/site.yaml`,
      [
        'subnets:',
        `  - { cidr: ${this.net(1)}, node: node2 }`,
        'places:',
        `  - { cidr: ${this.net(1)}, label: node2, lat: ${node2.lat}, lon: ${node2.lon} }`,
        `  - { cidr: ${this.net(2)}, label: HQ, lat: ${hq.lat}, lon: ${hq.lon} }`,
        '',
      ].join('\n'),
    );

    const lab = new Lab();
    this.lab = lab;
    const ns = this.namespaces;
    for (const name of ['n1', 'ca', 'cb', 'n2', 'ext'] as const)
      ns[name] = await lab.netns(name, { ipv6: false });
    await lab.exec(ns.n1, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    const br = await lab.bridge(ns.n1, lab.ifname('br'), `${this.addr(0, 254)}/24`);
    const pa = await lab.veth(
      { netns: ns.n1, name: lab.ifname('pa') },
      { netns: ns.ca, addr: `${this.ip.ca}/24` },
    );
    const pb = await lab.veth(
      { netns: ns.n1, name: lab.ifname('pb') },
      { netns: ns.cb, addr: `${this.ip.cb}/24` },
    );
    await lab.enslave(ns.n1, pa.a, br);
    await lab.enslave(ns.n1, pb.a, br);
    const t2 = await lab.veth(
      { netns: ns.n1, name: lab.ifname('t2'), addr: `${this.addr(1, 254)}/24` },
      { netns: ns.n2, addr: `${this.ip.n2}/24` },
    );
    const tx = await lab.veth(
      { netns: ns.n1, name: lab.ifname('tx'), addr: `${this.addr(2, 254)}/24` },
      { netns: ns.ext, addr: `${this.ip.ext}/24` },
    );
    for (const [name, net] of [
      ['ca', 0],
      ['cb', 0],
      ['n2', 1],
      ['ext', 2],
    ] as const) {
      await lab.ip(ns[name], 'route', 'add', 'default', 'via', this.addr(net, 254));
    }
    // The management link: the node's namespace ↔ this (host) namespace, apart from the data links.
    const mh = lab.ifname('mh');
    const mg = lab.ifname('mg');
    await run('ip', ['link', 'add', mh, 'type', 'veth', 'peer', 'name', mg, 'netns', ns.n1]);
    await run('ip', ['addr', 'add', `${this.mgmtHost}/24`, 'dev', mh]);
    await run('ip', ['link', 'set', mh, 'up']);
    await lab.ip(ns.n1, 'addr', 'add', `${this.addr(3, 1)}/24`, 'dev', mg);
    await lab.ip(ns.n1, 'link', 'set', mg, 'up');
    for (const name of ['cb', 'n2', 'ext'] as const)
      await new Tool(lab.spawnNode(ns[name], toolPath('http'), ['serve', '80'])).line('ready');

    this.tower = await Tower.start({
      control: { listen: `${this.mgmtHost}:0` },
      api: { listen: '127.0.0.1:0' },
      pki: { dir: pki, name: 'tower' },
      store: { path: `${this.dir}/tower.duckdb`, retentionDays: 7, rollupRetentionDays: 90 },
      tokens: `${this.dir}/tokens.yaml`,
      site: `${this.dir}/site.yaml`,
    });
    const { node1 } = POSITIONS;
    const node = new Tool(
      lab.spawn(ns.n1, process.execPath, [
        BIN,
        'node',
        'run',
        '--name',
        'node1',
        '--iface',
        pa.a,
        pb.a,
        t2.a,
        tx.a,
        '--tower',
        `${this.mgmtHost}:${this.tower.controlPort}`,
        '--pki',
        pki,
        '--state-dir',
        `${this.dir}/state-node1`,
        '--mgmt-iface',
        mg,
        '--subnet',
        this.net(0),
        '--position',
        `${node1.lat},${node1.lon}`,
        '--interval',
        String(options.intervalMs ?? 1000),
        ...bpfArgs(this.dir),
      ]),
    );
    this.nodeProc = node.child;
    node.child.stdout?.on('data', (d: Buffer) => {
      this.nodeLog += d.toString();
    });
    node.child.stderr?.on('data', (d: Buffer) => {
      this.nodeLog += d.toString();
    });
    await waitFor(
      'node1 to connect to the tower',
      async () => (this.tower.registry.nodes.get('node1')?.connected ? true : undefined),
      20_000,
    );
  }

  /** HTTP requests from container `from` (ca or cb) to `host`, one connection per path, in order. */
  async get(from: 'ca' | 'cb', host: string, paths: string[]): Promise<number[]> {
    const tool = new Tool(
      this.lab.spawnNode(this.namespaces[from], toolPath('http'), ['get', `http://${host}`, ...paths]),
    );
    return (await tool.result<{ statuses: number[] }>()).statuses;
  }

  /** Steady HTTP load from a container until the returned function is called. */
  load(from: 'ca' | 'cb', host: string, rps: number, paths: string[]): () => void {
    const child = this.lab.spawnNode(this.namespaces[from], toolPath('http'), [
      'load',
      `http://${host}`,
      String(rps),
      ...paths,
    ]);
    return () => child.kill('SIGTERM');
  }

  /** A long-lived process in a container (e.g. the benchmark's prober). */
  spawnIn(from: 'ca' | 'cb', script: string, args: string[] = []): ChildProcess {
    return this.lab.spawnNode(this.namespaces[from], script, args);
  }

  /** The query API with a token (the operator's by default). */
  api<T>(
    path: string,
    init: { method?: string; body?: string; token?: string } = {},
  ): Promise<{ status: number; body: T }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: this.tower.api.port,
          path: `/api/v1/${path}`,
          method: init.method ?? 'GET',
          ca: readFileSync(`${this.dir}/pki/ca.crt`),
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${init.token ?? this.operator}`,
          },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => {
            text += d.toString();
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as T) : (undefined as T) }),
          );
        },
      );
      req.on('error', reject);
      req.end(init.body);
    });
  }

  /** The SHA-256 of the tower certificate's public key, for Chromium to trust exactly that key. */
  towerSpki(): string {
    return spkiOfTower(this.dir);
  }

  async stop(): Promise<void> {
    this.nodeProc?.kill('SIGTERM');
    await this.lab?.cleanup();
    if (this.lab) await run('ip', ['link', 'del', this.lab.ifname('mh')]).catch(() => undefined);
    await this.tower?.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The SHA-256 of the public key of the tower certificate in `<dir>/pki`. */
export function spkiOfTower(dir: string): string {
  const cert = new X509Certificate(readFileSync(`${dir}/pki/tower.crt`));
  const der = cert.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

/** Debian's Chromium with a fresh profile, trusting the tower's certificate key only. */
export async function openBrowser(
  rig: Pick<DashboardRig, 'towerSpki'>,
): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  requirePrograms(['chromium'], 'the dashboard tests');
  const profile = mkdtempSync('/tmp/tacmesh-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1600, height: 1000 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      `--ignore-certificate-errors-spki-list=${rig.towerSpki()}`,
    ],
  });
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Signs in through the login form with a token; resolves on the Overview page. */
export async function login(page: Page, rig: Pick<DashboardRig, 'url'>, token: string): Promise<void> {
  await page.goto(`${rig.url}/`);
  await page.locator('#token').fill(token);
  await page.locator('form.login button[type=submit]').click();
  await page.locator('header nav a.on').waitFor();
}
