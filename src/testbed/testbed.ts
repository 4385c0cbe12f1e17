/**
 * `tacmesh testbed up|down|status|link`: the paper's experiment (§IV.3, Fig. 11–13) on one
 * machine. N WAN nodes (namespaces running `tacmesh node run` with their agent: two slices,
 * each a switch with a server and a client), radio links between them (rate by the agents'
 * HTB, loss by linkem), babeld routing around cuts, an external network behind n1, a
 * management network to the tower's namespace, the tower reachable from the host on
 * 127.0.0.1, and continuous HTTP inside nodes, between nodes and to the outside.
 *
 * `up` returns once everything runs; the processes live on (detached) and the state file
 * says what belongs to the testbed, for `status`, `link`, `down` — and `clean` after a crash.
 */

import { createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { objectPath } from '../bpf/index.js';
import { cleanLeftovers, Lab, newRunPrefix, requireRoot } from '../netlab/lab.js';
import { LinkEmulator } from '../netlab/linkem.js';
import { describeProof } from '../netlab/one-way-proof.js';
import { assertRunning, isAlive, logTail, startDetached, stopAll } from '../netlab/processes.js';
import { readStateFile, writeStateFile } from '../netlab/state-file.js';
import { toolPath } from '../netlab/tools/index.js';
import { requireVmSupport, stopVms } from '../node/agent/vm.js';
import { generateSigningKey, signManifest } from '../pki/bpf-manifest.js';
import { initCa, issue } from '../pki/ca.js';
import { run } from '../shared/exec.js';
import { type Program, requirePrograms } from '../shared/programs.js';
import { createToken } from '../tower/api/tokens.js';
import { FORWARDER } from './air.js';
import { babelConfig } from './babel.js';
import type { TestbedConfig } from './config.js';
import { type HqState, hqUp, towerForward } from './hq.js';
import { type LinkPlan, planTestbed, type TestbedPlan } from './plan.js';
import { type LinkSetting, linkKey, RADIO_TOOL, radioFile, uplinkMesh, writeRadios } from './radios.js';
import { type ServiceName, testbedQosPolicy, testbedServices } from './services.js';
import { type TrafficProcess, trafficPlan, webUrls } from './traffic.js';

export const STATE_FILE = '/run/tacmesh/testbed.json';
const DATA_ROOT = '/var/lib/tacmesh/testbed';
const BIN = fileURLToPath(new URL('../../bin/tacmesh.js', import.meta.url));
const CONTROL_PORT = 7443;
const TOWER_API_PORT = 8443;
/** Each node's Prometheus endpoint, on its namespace's loopback. */
export const NODE_METRICS_PORT = 9108;
/** What `up` runs: checked before it makes anything. */
const TESTBED_PROGRAMS: Program[] = ['ip', 'tc', 'nsenter', 'sysctl', 'babeld', '/usr/bin/python3'];
const HQ_PROGRAMS: Program[] = ['nfcapd', 'nfdump', 'ping'];

export interface TestbedState {
  prefix: string;
  dir: string;
  config: TestbedConfig;
  plan: TestbedPlan;
  /** name → PID, in start order. */
  pids: Record<string, number>;
  apiUrl: string;
  token: string;
  caCert: string;
  /** Links cut by `testbed link cut`, as "a-b". */
  cut: string[];
  /** Nodes whose management link `testbed mgmt cut` cut. */
  mgmtCut: string[];
  /** Links changed by `testbed link set`, as "a-b": their rate and loss now. */
  set: Record<string, { rateMbit: number; lossPct: number }>;
  /** MAC address of every radio link end, by "node/iface" (what each radio reports). */
  macs: Record<string, string>;
  /** Headquarters behind the diode (hq.ts), when enabled. */
  hq?: HqState;
  startedAt: number;
}

export type Progress = (message: string) => void;

const ns = (s: { prefix: string }, name: string) => `${s.prefix}-${name}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function readState(): TestbedState | undefined {
  return readStateFile<TestbedState>(STATE_FILE);
}

function writeState(state: TestbedState): void {
  writeStateFile(STATE_FILE, state);
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** GET (or PUT `body`, or POST it) on the tower's API through the host relay, trusting only the testbed's CA. */
export function towerApi<T>(
  state: TestbedState,
  path: string,
  body?: unknown,
  method: 'PUT' | 'POST' = 'PUT',
): Promise<T> {
  const url = new URL(`/api/v1/${path}`, state.apiUrl);
  const json = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        ca: readFileSync(state.caCert),
        servername: 'localhost',
        method: json === undefined ? 'GET' : method,
        headers: {
          authorization: `Bearer ${state.token}`,
          ...(json === undefined ? {} : { 'content-type': 'application/json' }),
        },
        timeout: 5000,
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
        });
        res.on('end', () => {
          if (res.statusCode !== 200 && res.statusCode !== 201)
            reject(new Error(`tower API ${path}: HTTP ${res.statusCode} ${text.slice(0, 200)}`));
          else resolve(JSON.parse(text) as T);
        });
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`tower API ${path}: no answer in 5 s`)));
    req.end(json);
  });
}

/**
 * Polls `fn` until it gives a value. `check` runs first on every round and its error ends
 * the wait at once (a process that died), where `fn`'s errors are retried until the timeout.
 */
async function waitFor<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined>,
  options: { why?: () => string; check?: () => void } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    options.check?.();
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const why = options.why ? `\n${options.why()}` : '';
      throw new Error(
        `timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? ` (last error: ${last})` : ''}${why}`,
      );
    }
    await sleep(500);
  }
}

function nodeConfig(state: TestbedState, node: TestbedPlan['nodes'][number]): object {
  const { plan, config, dir } = state;
  const mine = plan.links.filter((l) => l.a === node.name || l.b === node.name);
  const uplinks: Record<string, unknown>[] = mine.map((l) => ({
    interface: l.a === node.name ? l.ifA : l.ifB,
    rateMbit: config.link.rateMbit,
    address: l.a === node.name ? l.addrA : l.addrB,
    mesh: uplinkMesh(plan, node.name, l),
  }));
  if (node.name === plan.external.gatewayNode) {
    uplinks.push({
      interface: 'ext0',
      rateMbit: config.link.rateMbit * 5,
      address: plan.external.linkNodeAddr,
      gateway: plan.external.linkExtAddr.split('/')[0],
    });
  }
  const first = uplinks[0]?.interface ?? 'ext0';
  return {
    node: node.name,
    prefix: state.prefix,
    checkIntervalMs: 500,
    management: { interface: 'mg0', address: node.mgmtAddress, tower: [`${plan.towerMgmt}/32`] },
    uplinks,
    slices: node.slices.map((s, k) => ({
      name: s.name,
      uplink: first,
      gateway: s.gateway,
      share: 50,
      members: s.members.map((m) => ({
        name: m.name,
        kind: m.kind,
        address: m.address,
        // A VM runs its own client: the agent boots it with the URLs a container's gets.
        ...(m.kind === 'vm'
          ? {
              vm: {
                memoryMb: 128,
                cpus: 1,
                fetch: m.role === 'client' ? webUrls(plan, plan.nodes.indexOf(node), k) : [],
                // One a second: a request costs an emulated guest a process, and 4 VMs share 2 cores.
                fetchEverySec: 1,
              },
            }
          : {}),
      })),
    })),
    monitoring: { l3: true, l4: true, l7: true, sample: 1, intervalMs: 1000 },
    bpf: { manifest: join(dir, 'bpf', 'manifest.json'), trustedKeys: [join(dir, 'bpf', 'signing.pub')] },
    tower: { address: `${plan.towerMgmt}:${CONTROL_PORT}`, name: 'tower', pki: join(dir, 'pki', node.name) },
    position: node.position,
    mesh: {
      routes: { babel: { path: babelSocket(dir, node.name) } },
      // Telemetry through a neighbour when `testbed mgmt cut` takes the management link away.
      relay: { enabled: true },
    },
    watch: ['mesh-*', ...(node.name === plan.external.gatewayNode ? ['ext0'] : [])],
  };
}

/** Where a node's babeld answers its local (read-only) control protocol. */
export const babelSocket = (dir: string, node: string) => join(dir, `babeld-${node}.sock`);

export function memberNs(state: TestbedState, node: string, slice: string, member: string): string {
  return `${state.prefix}-${node}-${slice}-${member}`;
}

/** Replaces the loss program on both ends of a link (tc REPLACE): the configured loss, or 100 % (cut). */
function setLinkLoss(state: TestbedState, link: LinkPlan, loss: number): void {
  for (const [node, iface] of [
    [link.a, link.ifA],
    [link.b, link.ifB],
  ] as const) {
    LinkEmulator.attach(iface, { netns: ns(state, node), direction: 'ingress', loss, mode: 'tc' }).release();
  }
}

/** What the steps of `up` share: the plan and the state being filled in. */
interface Setup {
  config: TestbedConfig;
  plan: TestbedPlan;
  state: TestbedState;
  dir: string;
  logs: string;
  lab: Lab;
  progress: Progress;
}

/** The namespaces made, by role: the tower's, the external network's, and each node's by name. */
interface Namespaces {
  tower: string;
  ext: string;
  nodes: Map<string, string>;
}

type Run = Setup & Namespaces;

export async function testbedUp(
  config: TestbedConfig,
  progress: Progress,
  options: { keepOnFailure?: boolean } = {},
): Promise<TestbedState> {
  await preflight(config);
  const plan = planTestbed(config);
  const state = newState(config, plan);
  const { dir, prefix } = state;
  const logs = join(dir, 'logs');
  mkdirSync(logs, { recursive: true, mode: 0o700 });
  const setup: Setup = { config, plan, state, dir, logs, lab: new Lab(prefix), progress };
  try {
    progress(
      `testbed ${prefix}: ${plan.nodes.length} nodes, ${plan.links.length} radio links of ${config.link.rateMbit} Mbit/s with ${config.link.lossPct} % loss; data in ${dir}`,
    );
    await makeCredentials(setup);
    const r: Run = { ...setup, ...(await makeNetwork(setup)) };
    const hq = config.hq.enabled ? await startHeadquarters(r) : undefined;
    await startTower(r);
    if (hq) await headquartersReady(r, hq);
    await startNodes(r);
    await startRouting(r);
    await startTraffic(r);
    progress(`up: dashboard ${state.apiUrl} — token ${state.token} (CA ${state.caCert})`);
    return state;
  } catch (err) {
    if (options.keepOnFailure) {
      writeState(state);
      progress(
        `failed: ${(err as Error).message.split('\n')[0]} — left as it is for a look (logs in ${logs}); \`tacmesh testbed down\` removes it`,
      );
    } else {
      progress(`failed: ${(err as Error).message.split('\n')[0]} — removing what was made`);
      await testbedDown(() => undefined, state).catch(() => undefined);
    }
    throw err;
  }
}

/** Refuses before anything is made: not root, a program missing, a testbed up, the API port taken. */
async function preflight(config: TestbedConfig): Promise<void> {
  requireRoot();
  requirePrograms(TESTBED_PROGRAMS, 'the testbed');
  if (config.hq.enabled)
    requirePrograms(HQ_PROGRAMS, "the testbed's headquarters behind the diode (hq.enabled)");
  // One member of each node is a VM: QEMU and the built image, named before anything starts.
  requireVmSupport();
  const existing = readState();
  if (existing && Object.values(existing.pids).some(isAlive)) {
    throw new Error(
      `a testbed is already up (${existing.prefix}, ${existing.apiUrl}): \`tacmesh testbed down\` first`,
    );
  }
  if (existing) rmSync(STATE_FILE, { force: true });
  if (!(await portFree(config.apiPort))) {
    throw new Error(
      `port ${config.apiPort} on 127.0.0.1 is taken: choose another with apiPort in testbed.yaml or --api-port`,
    );
  }
}

function newState(config: TestbedConfig, plan: TestbedPlan): TestbedState {
  const prefix = newRunPrefix();
  const dir = join(DATA_ROOT, prefix);
  return {
    prefix,
    dir,
    config,
    plan,
    pids: {},
    apiUrl: `https://127.0.0.1:${config.apiPort}/`,
    token: '',
    caCert: join(dir, 'pki', 'ca.crt'),
    cut: [],
    mgmtCut: [],
    set: {},
    macs: {},
    startedAt: Date.now(),
  };
}

/** Node arguments for a tool script: the running code's loader (tsx under the sources) first. */
const nodeArgs = (args: string[]) => [...process.execArgv, ...args];

/** Fails at once if a process `up` started has exited, with the end of its log. */
const stillRunning = (r: Run) => () => assertRunning(r.state.pids, r.logs);

async function makeCredentials({ dir, plan, state, progress }: Setup): Promise<void> {
  progress('certificates: a CA, the tower, one per node; a signed manifest of the eBPF objects');
  await initCa(join(dir, 'pki'));
  await issue(join(dir, 'pki'), 'tower', 'tower', { altNames: [plan.towerMgmt, plan.host.towerAddr] });
  for (const n of plan.nodes) {
    // Each node gets a directory with the CA and only its own key.
    mkdirSync(join(dir, 'pki', n.name), { mode: 0o700 });
    await issue(join(dir, 'pki'), 'node', n.name);
    for (const f of ['ca.crt', `${n.name}.crt`, `${n.name}.key`]) {
      writeFileSync(join(dir, 'pki', n.name, f), readFileSync(join(dir, 'pki', f)), {
        mode: f.endsWith('.key') ? 0o600 : 0o644,
      });
    }
  }
  mkdirSync(join(dir, 'bpf'), { mode: 0o700 });
  const signing = generateSigningKey();
  writeFileSync(join(dir, 'bpf', 'signing.pub'), signing.publicPem);
  const manifest = signManifest(
    [objectPath('flowmon'), objectPath('linkem'), objectPath('qos')],
    createPrivateKey(signing.privatePem),
  );
  writeFileSync(join(dir, 'bpf', 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  state.token = createToken(join(dir, 'tokens.yaml'), 'operator', 'operator');
}

async function makeNetwork({ lab, plan, state, logs, config, progress }: Setup): Promise<Namespaces> {
  progress('namespaces: tower, external network, nodes; management network and radio links');
  const tower = await lab.netns('tower');
  const ext = await lab.netns('ext');
  const nodes = new Map<string, string>();
  for (const n of plan.nodes) {
    const nsName = await lab.netns(n.name);
    nodes.set(n.name, nsName);
    await lab.exec(nsName, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  }
  await lab.bridge(tower, 'mgbr', `${plan.towerMgmt}/24`);
  for (const n of plan.nodes) {
    const v = await lab.veth(
      { netns: tower, name: `mg-${n.name}` },
      { netns: nodes.get(n.name) ?? '', name: 'mg0' },
    );
    await lab.enslave(tower, v.a, 'mgbr');
  }
  await lab.veth(
    { netns: nodes.get(plan.external.gatewayNode) ?? '', name: 'ext0' },
    { netns: ext, name: 'ext0', addr: plan.external.linkExtAddr },
  );
  await lab.ip(ext, 'addr', 'add', `${plan.external.serverAddr}/24`, 'dev', 'lo');
  await lab.ip(ext, 'route', 'add', '10.77.0.0/16', 'via', plan.external.linkNodeAddr.split('/')[0] ?? '');
  // Each radio link through its air (air.ts): a namespace of its own between the two ends,
  // whose forwarder adds the radio's delay, and where `link set --rate` puts a FIFO (TBF).
  for (const l of plan.links) {
    const air = await lab.netns(airName(l), { ipv6: false });
    for (const [node, iface] of [
      [l.a, l.ifA],
      [l.b, l.ifB],
    ] as const) {
      await lab.veth({ netns: nodes.get(node) ?? '', name: iface }, { netns: air, name: `to-${node}` });
      await lab.ip(air, 'link', 'set', `to-${node}`, 'promisc', 'on');
    }
    state.pids[airName(l)] = startDetached(
      airName(l),
      air,
      '/usr/bin/python3',
      ['-c', FORWARDER, `to-${l.a}`, `to-${l.b}`, String(config.link.delayMs)],
      logs,
    );
    state.macs[`${l.a}/${l.ifA}`] = await lab.macOf(nodes.get(l.a) ?? '', l.ifA);
    state.macs[`${l.b}/${l.ifB}`] = await lab.macOf(nodes.get(l.b) ?? '', l.ifB);
  }
  // The host's way in: 127.0.0.1:<apiPort> → relay → veth → the tower's API.
  const hostIf = lab.ifname('h0');
  await run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'up0', 'netns', tower]);
  await run('ip', ['addr', 'add', plan.host.hostAddr, 'dev', hostIf]);
  await run('ip', ['link', 'set', hostIf, 'up']);
  await lab.ip(tower, 'addr', 'add', `${plan.host.towerAddr}/30`, 'dev', 'up0');
  await lab.ip(tower, 'link', 'set', 'up0', 'up');
  return { tower, ext, nodes };
}

async function startTower(r: Run): Promise<void> {
  const { config, dir, logs, plan, state } = r;
  r.progress('tower: control plane on the management network, API and dashboard');
  writeFileSync(
    join(dir, 'site.yaml'),
    stringify({
      places: [
        {
          cidr: plan.external.subnet,
          label: 'external network',
          lat: config.center.lat + 0.35,
          lon: config.center.lon - 0.3,
        },
      ],
    }),
  );
  writeFileSync(
    join(dir, 'tower.yaml'),
    stringify({
      control: { listen: `${plan.towerMgmt}:${CONTROL_PORT}` },
      api: { listen: `0.0.0.0:${TOWER_API_PORT}` },
      pki: { dir: join(dir, 'pki'), name: 'tower' },
      store: { path: join(dir, 'tower.duckdb'), retentionDays: 7, rollupRetentionDays: 90 },
      tokens: join(dir, 'tokens.yaml'),
      site: join(dir, 'site.yaml'),
      services: testbedServices(plan, config),
      ...(config.hq.enabled ? { forward: towerForward(plan) } : {}),
    }),
  );
  state.pids.tower = startDetached(
    'tower',
    r.tower,
    process.execPath,
    [BIN, 'tower', 'run', '-c', join(dir, 'tower.yaml')],
    logs,
  );
  state.pids.relay = startDetached(
    'relay',
    null,
    process.execPath,
    nodeArgs([toolPath('relay'), `127.0.0.1:${config.apiPort}`, `${plan.host.towerAddr}:${TOWER_API_PORT}`]),
    logs,
  );
  writeState(state);
  await waitFor('the tower API', 60_000, () => towerApi(state, 'health'), {
    why: () => logTail(logs, 'tower'),
    check: stillRunning(r),
  });
  if (config.qos) {
    // Before the nodes start: each finds its share of the policy in the tower's welcome.
    r.progress(
      'QoS policy: C2 first, the sensor stream next, web and bulk below; radio links auto, closed loop on',
    );
    await towerApi(state, 'qos', testbedQosPolicy(plan, config));
  }
}

/** HQ's network and processes (hq.ts), before the tower: its first records find the diode up. */
async function startHeadquarters(r: Run): ReturnType<typeof hqUp> {
  const hq = await hqUp(r.lab, r.state, r.tower, BIN);
  writeState(r.state);
  r.progress(
    `headquarters: the tower's flow records as IPFIX through a one-way link (${r.config.hq.rateMbit} Mbit/s, ${r.config.hq.lossPct} % loss) to nfcapd in ${hq.flowsDir}`,
  );
  return hq;
}

/** The one-way proof (it ran while the tower started), and the diode sender up. */
async function headquartersReady(r: Run, hq: Awaited<ReturnType<typeof hqUp>>): Promise<void> {
  r.state.hq = { proof: await hq.proof, dir: hq.dir, flowsDir: hq.flowsDir };
  for (const line of describeProof(r.state.hq.proof).split('\n')) r.progress(`  headquarters: ${line}`);
  if (!r.state.hq.proof.oneWay) throw new Error('the link to headquarters is not one-way');
  const sendStats = join(hq.dir, 'send-stats.json');
  await waitFor(
    'the diode sender to headquarters',
    30_000,
    async () => (existsSync(sendStats) ? true : undefined),
    {
      why: () => logTail(r.logs, 'hq-diode-send'),
      check: stillRunning(r),
    },
  );
  writeState(r.state);
}

async function startNodes(r: Run): Promise<void> {
  const { dir, logs, nodes, plan, state } = r;
  r.progress(
    `nodes: ${plan.nodes.map((n) => n.name).join(', ')} — agent (slices, switches, members), signed eBPF monitor, link to the tower`,
  );
  // The radios first: each node's router finds its modems at start (and retries if not).
  updateRadios(state);
  for (const n of plan.nodes) {
    state.pids[`radio-${n.name}`] = startDetached(
      `radio-${n.name}`,
      nodes.get(n.name) ?? null,
      process.execPath,
      nodeArgs([RADIO_TOOL, radioFile(dir, n.name)]),
      logs,
    );
  }
  for (const n of plan.nodes) {
    writeFileSync(join(dir, `${n.name}.yaml`), stringify(nodeConfig(state, n)));
    state.pids[n.name] = startDetached(
      n.name,
      nodes.get(n.name) ?? null,
      process.execPath,
      [
        ...[
          BIN,
          'node',
          'run',
          '-c',
          join(dir, `${n.name}.yaml`),
          '--state-dir',
          join(dir, `state-${n.name}`),
        ],
        ...['--metrics-listen', `127.0.0.1:${NODE_METRICS_PORT}`],
      ],
      logs,
    );
  }
  writeState(state);
  await waitFor(
    'every node connected to the tower',
    90_000,
    async () => {
      const list = await towerApi<{ name: string; connected: boolean }[]>(state, 'nodes');
      return plan.nodes.every((n) => list.some((x) => x.name === n.name && x.connected)) ? list : undefined;
    },
    {
      why: () => plan.nodes.map((n) => `--- ${n.name}\n${logTail(logs, n.name, 6)}`).join('\n'),
      check: stillRunning(r),
    },
  );
}

async function startRouting(r: Run): Promise<void> {
  const { config, dir, lab, logs, nodes, plan, state } = r;
  r.progress('radio links: loss on every link end; babeld on every node');
  for (const l of plan.links) setLinkLoss(state, l, config.link.lossPct / 100);
  for (const n of plan.nodes) {
    const meshIfs = plan.links
      .filter((l) => l.a === n.name || l.b === n.name)
      .map((l) => (l.a === n.name ? l.ifA : l.ifB));
    const conf = join(dir, `babeld-${n.name}.conf`);
    writeFileSync(conf, babelConfig(meshIfs, n.name === plan.external.gatewayNode, babelSocket(dir, n.name)));
    state.pids[`babeld-${n.name}`] = startDetached(
      `babeld-${n.name}`,
      nodes.get(n.name) ?? null,
      'babeld',
      ['-c', conf, '-I', join(dir, `babeld-${n.name}.pid`), '-S', join(dir, `babeld-${n.name}.state`)],
      logs,
    );
  }
  writeState(state);
  const last = plan.nodes[plan.nodes.length - 1];
  const far = last?.slices[0]?.subnet ?? '';
  await waitFor(
    `routes: n1 reaches ${far}, ${last?.name} reaches the outside`,
    60_000,
    async () => {
      const a = (await lab.ip(nodes.get('n1'), 'route', 'show', far)).stdout.trim();
      const b = (await lab.ip(nodes.get(last?.name ?? ''), 'route', 'show', 'default')).stdout.trim();
      return a && b ? true : undefined;
    },
    {
      why: () =>
        plan.nodes.map((n) => `--- babeld-${n.name}\n${logTail(logs, `babeld-${n.name}`, 6)}`).join('\n'),
      check: stillRunning(r),
    },
  );
}

async function startTraffic(r: Run): Promise<void> {
  const { config, logs, plan, state } = r;
  r.progress(
    `traffic: C2 between all nodes (${config.traffic.c2Rps}/s each), sensor streams (${config.traffic.sensorKbit} kbit/s each), web in every slice and to the outside${config.traffic.bulk === true ? ', a bulk transfer' : config.traffic.bulk === 'off' ? ' (the bulk transfer off until a scenario turns it on)' : ''}`,
  );
  for (const p of trafficPlan(plan, config).filter((x) => !x.idle))
    state.pids[p.name] = startTrafficProcess(state, p, r.ext, logs);
  writeState(state);
  // A traffic tool that cannot start dies at once: give them a moment, then look.
  await sleep(1000);
  stillRunning(r)();
}

/** The traffic tools, each named in full (the project's check follows toolPath's literals). */
const TRAFFIC_TOOLS: Record<TrafficProcess['tool'], string> = {
  http: toolPath('http'),
  udp: toolPath('udp'),
  bulk: toolPath('bulk'),
};

function startTrafficProcess(state: TestbedState, p: TrafficProcess, extNs: string, logs: string): number {
  const where = p.at ? memberNs(state, p.at.node, p.at.slice, p.at.member) : extNs;
  return startDetached(p.name, where, process.execPath, nodeArgs([TRAFFIC_TOOLS[p.tool], ...p.args]), logs);
}

/**
 * Turns a service's traffic off (its processes stopped) or on again (started as `up` did);
 * returns the processes it stopped or started.
 */
export async function testbedTraffic(action: 'on' | 'off', service: ServiceName): Promise<string[]> {
  requireRoot();
  const state = readState();
  if (!state) throw new Error('no testbed is up: `tacmesh testbed up` first');
  const procs = trafficPlan(state.plan, state.config).filter((p) => p.service === service);
  if (!procs.length) throw new Error(`the testbed makes no traffic of the service "${service}"`);
  const changed: string[] = [];
  for (const p of procs) {
    const pid = state.pids[p.name];
    const alive = pid !== undefined && isAlive(pid);
    if (action === 'off') {
      if (alive) {
        await stopAll([pid]);
        changed.push(p.name);
      }
      delete state.pids[p.name];
    }
    if (action === 'on' && !alive) {
      state.pids[p.name] = startTrafficProcess(state, p, ns(state, 'ext'), join(state.dir, 'logs'));
      changed.push(p.name);
    }
  }
  writeState(state);
  return changed;
}

export async function testbedDown(progress: Progress, given?: TestbedState, keepData = false): Promise<void> {
  requireRoot();
  const state = given ?? readState();
  if (!state) {
    progress('no testbed is up (no state file); `tacmesh testbed clean` removes leftovers of a crash');
    return;
  }
  const pids = Object.values(state.pids).reverse();
  progress(`stopping ${pids.length} processes`);
  // Returns once each has exited, so nothing of the testbed runs after `down` says so.
  const stopped = await stopAll(pids).catch((err: Error) => err);
  const pattern = new RegExp(`^${state.prefix}`);
  // The agents leave their VMs running when they stop, as they leave their namespaces.
  const vms = await stopVms(pattern);
  const report = await cleanLeftovers(pattern);
  progress(
    `removed ${vms.length} VMs, ${report.namespaces.length} namespaces and ${report.links.length} host links`,
  );
  if (stopped instanceof Error) throw stopped;
  if (!keepData) rmSync(state.dir, { recursive: true, force: true });
  if (readState()?.prefix === state.prefix) rmSync(STATE_FILE, { force: true });
}

/** The namespace a radio link runs through (`<prefix>-air-<a>-<b>`). */
function airName(l: LinkPlan): string {
  return `air-${l.a}-${l.b}`;
}

function findLink(state: TestbedState, a: string, b: string): LinkPlan {
  const link = state.plan.links.find((l) => (l.a === a && l.b === b) || (l.a === b && l.b === a));
  if (!link) {
    throw new Error(
      `no radio link between ${a} and ${b}; links: ${state.plan.links.map((l) => `${l.a}-${l.b}`).join(', ')}`,
    );
  }
  return link;
}

/** Cuts a radio link (nothing passes either way) or restores it to its configured loss. */
export function testbedLink(action: 'cut' | 'restore', a: string, b: string): LinkPlan {
  requireRoot();
  const state = readState();
  if (!state) throw new Error('no testbed is up: `tacmesh testbed up` first');
  const link = findLink(state, a, b);
  setLinkLoss(state, link, action === 'cut' ? 1 : state.config.link.lossPct / 100);
  const key = linkKey(link);
  state.cut = state.cut.filter((k) => k !== key);
  if (action === 'cut') state.cut.push(key);
  if (action === 'restore' && state.set[key]) setLinkLoss(state, link, state.set[key].lossPct / 100);
  updateRadios(state);
  writeState(state);
  return link;
}

/**
 * Cuts a node's management link to the tower (nothing passes either way: linkem at 100 %
 * on the node's mg0 and on the tower's end) or restores it. With the mesh relay on, the
 * node's telemetry then reaches the tower through a neighbour.
 */
export function testbedMgmt(action: 'cut' | 'restore', node: string): void {
  requireRoot();
  const state = readState();
  if (!state) throw new Error('no testbed is up: `tacmesh testbed up` first');
  if (!state.plan.nodes.some((n) => n.name === node))
    throw new Error(`no node ${node}; nodes: ${state.plan.nodes.map((n) => n.name).join(', ')}`);
  const loss = action === 'cut' ? 1 : 0;
  for (const [netns, iface] of [
    [ns(state, node), 'mg0'],
    [ns(state, 'tower'), `mg-${node}`],
  ] as const) {
    LinkEmulator.attach(iface, { netns, direction: 'ingress', loss, mode: 'tc' }).release();
  }
  state.mgmtCut = (state.mgmtCut ?? []).filter((n) => n !== node);
  if (action === 'cut') state.mgmtCut.push(node);
  writeState(state);
}

/** The rate and loss of a link now (configured, or as `link set` left it) and whether it is cut. */
function linkSetting(state: TestbedState, l: LinkPlan): LinkSetting {
  const set = state.set[linkKey(l)];
  return {
    rateMbit: set?.rateMbit ?? state.config.link.rateMbit,
    lossPct: set?.lossPct ?? state.config.link.lossPct,
    cut: state.cut.includes(linkKey(l)),
  };
}

function updateRadios(state: TestbedState): void {
  writeRadios(
    state.dir,
    state.plan,
    (l) => linkSetting(state, l),
    state.config.link.rateMbit,
    state.macs,
    state.config.link.delayMs * 1000,
  );
}

/**
 * Degrades (or restores) a radio link live: loss by linkem on both ends, a rate below the
 * configured one by a FIFO at that rate (TBF) on each direction in the link's air namespace
 * (the radio carries no more), and the radios report the new rate over DLEP.
 */
export async function testbedLinkSet(
  a: string,
  b: string,
  change: { lossPct?: number; rateMbit?: number },
): Promise<{ link: LinkPlan; setting: LinkSetting }> {
  requireRoot();
  const state = readState();
  if (!state) throw new Error('no testbed is up: `tacmesh testbed up` first');
  const link = findLink(state, a, b);
  const now = linkSetting(state, link);
  const next = { rateMbit: change.rateMbit ?? now.rateMbit, lossPct: change.lossPct ?? now.lossPct };
  if (!(next.lossPct >= 0 && next.lossPct <= 100))
    throw new Error(`loss must be 0-100 %, not ${next.lossPct}`);
  if (!(next.rateMbit > 0 && next.rateMbit <= state.config.link.rateMbit))
    throw new Error(
      `rate must be above 0 and at most the link's ${state.config.link.rateMbit} Mbit/s, not ${next.rateMbit}`,
    );
  if (!now.cut) setLinkLoss(state, link, next.lossPct / 100);
  const air = ns(state, airName(link));
  for (const end of [`to-${link.a}`, `to-${link.b}`]) {
    if (next.rateMbit < state.config.link.rateMbit) {
      // ~100 ms of queue at the rate, as a radio's FIFO; a burst of 10 ms (at least 16 KiB).
      const burst = Math.max(16 * 1024, Math.round((next.rateMbit * 1e6) / 8 / 100));
      await run('tc', [
        ...['-n', air, 'qdisc', 'replace', 'dev', end, 'root', 'tbf'],
        ...['rate', `${next.rateMbit}mbit`, 'burst', String(burst), 'latency', '100ms'],
      ]);
    } else {
      await run('tc', ['-n', air, 'qdisc', 'del', 'dev', end, 'root']).catch(() => undefined);
    }
  }
  state.set[linkKey(link)] = next;
  updateRadios(state);
  writeState(state);
  return { link, setting: { ...next, cut: now.cut } };
}

export interface TestbedStatus {
  state: TestbedState;
  processes: { name: string; pid: number; alive: boolean }[];
  nodes: { name: string; connected: boolean; via: string | null; lastSeen: number }[] | { error: string };
}

export async function testbedStatus(): Promise<TestbedStatus | undefined> {
  const state = readState();
  if (!state) return undefined;
  const processes = Object.entries(state.pids).map(([name, pid]) => ({ name, pid, alive: isAlive(pid) }));
  let nodes: TestbedStatus['nodes'];
  try {
    nodes = await towerApi(state, 'nodes');
  } catch (err) {
    nodes = { error: (err as Error).message };
  }
  return { state, processes, nodes };
}
