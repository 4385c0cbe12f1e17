/**
 * A tower in this process and a node runtime (also in this process) whose QoS acts on the
 * uplink of the namespaces of qos-link.ts: policy changes go through the real
 * control plane (gRPC, mTLS) and come back as the node's counters.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanLeftovers, Lab } from '../../src/netlab/lab.js';
import { NodeRuntime } from '../../src/node/runtime.js';
import { initCa, issue, pkiPaths } from '../../src/pki/ca.js';
import { createToken } from '../../src/tower/api/tokens.js';
import { Tower } from '../../src/tower/tower.js';
import { testTrust } from './agent-node.js';
import { LINK_BPS, makeQosLink, type QosLink } from './qos-link.js';

export const NODE = 'node1';

export class QosRig {
  readonly lab = new Lab();
  readonly dir = mkdtempSync(join(tmpdir(), 'tacmesh-qos-'));
  link!: QosLink;
  tower!: Tower;
  node!: NodeRuntime;
  /** an operator's API token */
  token = '';

  async start(): Promise<void> {
    const pki = `${this.dir}/pki`;
    await initCa(pki);
    await issue(pki, 'tower', 'tower', { altNames: ['127.0.0.1'] });
    await issue(pki, 'node', NODE);
    this.token = createToken(`${this.dir}/tokens.yaml`, 'op', 'operator');
    this.link = await makeQosLink(this.lab);
    this.tower = await Tower.start({
      control: { listen: '127.0.0.1:0' },
      api: { listen: '127.0.0.1:0' },
      pki: { dir: pki, name: 'tower' },
      store: { path: `${this.dir}/tower.duckdb`, retentionDays: 7, rollupRetentionDays: 90 },
      tokens: `${this.dir}/tokens.yaml`,
    });
    const paths = pkiPaths(pki);
    this.node = new NodeRuntime({
      name: NODE,
      interfaces: [this.link.uplink],
      netns: this.link.a,
      stateDir: `${this.dir}/state`,
      bpf: testTrust(this.dir),
      hello: { subnets: [], slices: [], position: null },
      tower: {
        tower: `127.0.0.1:${this.tower.controlPort}`,
        towerName: 'tower',
        tls: { caCert: paths.caCert, cert: paths.cert(NODE), key: paths.key(NODE) },
      },
    });
    await this.node.start();
    const end = Date.now() + 10_000;
    while (!this.tower.qos.nodes.get(NODE)?.connected) {
      if (Date.now() > end) throw new Error('the node did not connect to the tower');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The dashboard's address. */
  get url(): string {
    return `https://127.0.0.1:${this.tower.api.port}`;
  }

  /** The policy's links: the node's uplink at the rate the node shapes to. */
  links() {
    return [{ node: NODE, iface: this.link.uplink, rateBps: LINK_BPS }];
  }

  async stop(): Promise<void> {
    await this.node?.stop().catch(() => undefined);
    await this.tower?.stop().catch(() => undefined);
    await this.lab.cleanup();
    await cleanLeftovers(new RegExp(`^${this.lab.prefix}`));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
