/**
 * A node and a tower for operations tests: namespace `n1` serves HTTP on its end of a veth
 * to a client namespace `cl`; `tacmesh node run` (from dist/) in n1 watches that veth and
 * streams to a tower running in this process on the host end of a management veth.
 *
 *   cl 10.77.<data>.1 ── veth (watched) ── 10.77.<data>.254 n1 ── mgmt veth ── 10.77.<mgmt>.254 tower
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { Lab } from '../../src/netlab/lab.js';
import { initCa, issue } from '../../src/pki/ca.js';
import { run } from '../../src/shared/exec.js';
import { createToken } from '../../src/tower/api/tokens.js';
import type { TowerConfig } from '../../src/tower/config.js';
import { Tower } from '../../src/tower/tower.js';
import { testTrust } from './agent-node.js';
import { mgmtVeth } from './mgmt.js';
import { Tool, toolPath } from './tools/index.js';

export const BIN = new URL('../../bin/tacmesh.js', import.meta.url).pathname;

import { sleep, waitFor } from './wait.js';

export { sleep, waitFor };

/** `node run`'s flags for a manifest signing the built flowmon and qos objects, made in `dir`. */
export function bpfArgs(dir: string): string[] {
  const trust = testTrust(dir);
  return ['--bpf-manifest', trust.manifest, '--bpf-trusted-key', ...trust.trustedKeys];
}

export class NodeTowerLab {
  readonly lab = new Lab();
  readonly dir = mkdtempSync('/tmp/tacmesh-ops-test-');
  n1 = '';
  cl = '';
  watched = '';
  tower: Tower | undefined;
  config: TowerConfig | undefined;
  readonly mgmtTower: string;
  readonly server: string;
  private readonly nodes = new Set<ChildProcess>();

  /** `mgmt` and `data`: third octets of the two /24s (10.77.<n>.0/24). */
  constructor(
    private readonly mgmt: number,
    private readonly data: number,
  ) {
    this.mgmtTower = `10.77.${mgmt}.254`;
    this.server = `10.77.${data}.254`;
  }

  /** An operator's API token. */
  token = '';

  async start(towerExtra: Partial<TowerConfig> = {}): Promise<void> {
    const { lab, dir } = this;
    await initCa(`${dir}/pki`);
    await issue(`${dir}/pki`, 'tower', 'tower', { altNames: [this.mgmtTower] });
    await issue(`${dir}/pki`, 'node', 'node1');
    this.token = createToken(`${dir}/tokens.yaml`, 'op', 'operator');
    this.n1 = await lab.netns('n1', { ipv6: false });
    this.cl = await lab.netns('cl', { ipv6: false });
    const v = await lab.veth(
      { netns: this.n1, name: lab.ifname('d'), addr: `${this.server}/24` },
      { netns: this.cl, addr: `10.77.${this.data}.1/24` },
    );
    this.watched = v.a;
    await mgmtVeth(lab, this.n1, `${this.mgmtTower}/24`, `10.77.${this.mgmt}.1/24`);
    await new Tool(lab.spawnNode(this.n1, toolPath('http'), ['serve', '80'])).line('ready');
    this.config = {
      control: { listen: `${this.mgmtTower}:0` },
      api: { listen: '127.0.0.1:0' },
      pki: { dir: `${dir}/pki`, name: 'tower' },
      store: { path: `${dir}/tower.duckdb`, retentionDays: 7, rollupRetentionDays: 90 },
      tokens: `${dir}/tokens.yaml`,
      ...towerExtra,
    };
    this.tower = await Tower.start(this.config);
    this.config.control.listen = `${this.mgmtTower}:${this.tower.controlPort}`;
  }

  /** `tacmesh node run` in n1, watching the data veth, with its state in the test's directory. */
  startNode(extra: string[] = []): Tool {
    const tower = this.tower as Tower;
    const args = [
      BIN,
      'node',
      'run',
      '--name',
      'node1',
      '--iface',
      this.watched,
      '--tower',
      `${this.mgmtTower}:${tower.controlPort}`,
      '--pki',
      `${this.dir}/pki`,
      '--state-dir',
      `${this.dir}/state`,
      '--mgmt-iface',
      this.lab.ifname('mg'),
      ...bpfArgs(this.dir),
      ...extra,
    ];
    const node = new Tool(this.lab.spawn(this.n1, process.execPath, args));
    this.nodes.add(node.child);
    node.child.stderr?.on('data', (d) => {
      if (process.env.TACMESH_TEST_VERBOSE) process.stderr.write(`[node1] ${d}`);
    });
    return node;
  }

  /** HTTP requests from cl to n1 at `rps` until killed. */
  load(rps: number, path: string): ChildProcess {
    return this.lab.spawnNode(this.cl, toolPath('http'), [
      'load',
      `http://${this.server}`,
      String(rps),
      path,
    ]);
  }

  /** Sets the tower's end of the management link down or up. */
  async mgmtLink(state: 'up' | 'down'): Promise<void> {
    await run('ip', ['link', 'set', this.lab.ifname('mh'), state]);
  }

  /** A request to the tower's API (HTTPS, our CA); GET unless told. */
  async api(
    path: string,
    init: { method?: string; body?: string } = {},
  ): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: (this.tower as Tower).api.port,
          path: `/api/v1/${path}`,
          method: init.method ?? 'GET',
          ca: readFileSync(`${this.dir}/pki/ca.crt`),
          servername: 'localhost',
          headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
        },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => {
            body += d.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end(init.body);
    });
  }

  async query<T>(sql: string): Promise<T[]> {
    return (await (this.tower as Tower).store.reader.runAndReadAll(sql)).getRowObjectsJS() as T[];
  }

  /** Every seq the tower stored for node1, over the three record tables (with repeats). */
  async seqs(): Promise<number[]> {
    const rows = await this.query<{ seq: number }>(`
      SELECT seq::DOUBLE AS seq FROM flows WHERE node = 'node1' UNION ALL
      SELECT seq::DOUBLE FROM http WHERE node = 'node1' UNION ALL
      SELECT seq::DOUBLE FROM monitor_stats WHERE node = 'node1' ORDER BY 1`);
    return rows.map((r) => r.seq);
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) n.kill('SIGKILL');
    await this.lab.cleanup();
    await run('ip', ['link', 'del', this.lab.ifname('mh')]).catch(() => undefined);
    await this.tower?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
