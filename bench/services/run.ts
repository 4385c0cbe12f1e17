/**
 * bench/services: how right tacmesh's golden signals are and what they cost, beside a real
 * L7 proxy in the path (Debian's HAProxy: its stats socket and its log), in one run, on the
 * same service under the same load. The rig is test/support/node-tower.ts (n1 serves HTTP
 * on its end of a veth, the client namespace calls it); the load and the ground truth are
 * src/netlab/tools/http.ts `sample`, as in services.test.ts: a fixed server delay, each
 * request asking for a status drawn at random from a mix neither monitor is told, and the
 * generator's own count of statuses and its latencies (connect to last byte, as the client
 * sees them).
 *
 * Four phases, the same load each:
 *   1. direct: client to server, nothing watching (the latency baseline);
 *   2. tacmesh: `tacmesh node run` in n1 watching the veth (eBPF), the tower in this process;
 *      the signals of GET /api/v1/services and /services/graph over the load's window;
 *   3. HAProxy: client to HAProxy in n1, beside the server as a sidecar sits (one hop more,
 *      over loopback); its stats socket (`show stat`) and its log, one line per request;
 *   4. direct again: how far the baseline itself moves.
 *
 * The server's own time has no truth of its own: it lies between the fixed delay and the
 * client's time (services.test.ts's bound); the table sets each side against the client's.
 * Cost: client latency p50/p99 against direct; CPU per 1,000 requests/s = CPU seconds per
 * 1,000 requests served: tacmesh's node process (/proc) plus its eBPF programs' kernel run
 * time (bpf_stats, on for that phase only), the tower apart (this process); the haproxy
 * process (/proc). Istio 1.24's published figures are the reference.
 *
 *   node --import tsx bench/services/run.ts [--rps 300] [--seconds 20] [--delay 10] [--quick]
 */
import { existsSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { stopChild } from '../../src/netlab/lab.js';
import { requirePrograms } from '../../src/shared/programs.js';
import type { ServiceGraph, ServiceRow } from '../../src/tower/api/services-types.js';
import { NodeTowerLab, sleep, waitFor } from '../../test/support/node-tower.js';
import { heldBpfRunTime, rssBytes, treeCpuNs, withBpfStats } from '../../test/support/proc-stat.js';
import { Tool, toolPath } from '../../test/support/tools/index.js';

const { values: args } = parseArgs({
  options: {
    rps: { type: 'string', default: '300' },
    seconds: { type: 'string', default: '20' },
    delay: { type: 'string', default: '10' },
    /** a smoke run: 50 requests/s for 4 s */
    quick: { type: 'boolean', default: false },
  },
});
const RPS = args.quick ? 50 : Number(args.rps);
const SECONDS = args.quick ? 4 : Number(args.seconds);
const DELAY_MS = Number(args.delay);
const COUNT = Math.round(RPS * SECONDS);
/** The hidden mix: 10 % 404, 10 % 503. */
const MIX = ['200', '200', '200', '200', '200', '200', '200', '200', '404', '503'];
const PROXY_PORT = 8080;
const IDLE_S = args.quick ? 2 : 5;
/** Istio 1.24, "Performance and Scalability" (istio.io/latest/docs/ops/deployment/performance-and-scalability), per 1,000 requests/s of 1 KB. */
const ISTIO = { sidecar: { vcpu: 0.2, mb: 60 }, ztunnel: { vcpu: 0.06, mb: 12 } };

requirePrograms(['ip', 'haproxy'], 'bench/services');

interface Truth {
  sent: number;
  statuses: Record<string, number>;
  latenciesMs: number[];
  startMs: number;
  endMs: number;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? Number.NaN;
};
const ofClass = (statuses: Record<string, number>, cls: number) =>
  Object.entries(statuses).reduce((n, [code, k]) => n + (Math.floor(Number(code) / 100) === cls ? k : 0), 0);
const seconds = (t: Truth) => (t.endMs - t.startMs) / 1000;

const rig = new NodeTowerLab(213, 214);
const client = '10.77.214.1';

/** One load from the client namespace to `url`: the generator's own tally. */
async function load(url: string): Promise<Truth> {
  const gen = new Tool(
    rig.lab.spawnNode(rig.cl, toolPath('http'), [
      'sample',
      url,
      String(COUNT),
      String(RPS),
      String(DELAY_MS),
      ...MIX,
    ]),
  );
  return gen.result<Truth>();
}

/** CPU ns a process used over a span, and the span's wall ns. */
interface Spent {
  cpuNs: number;
  wallNs: number;
}

async function cpuOver<T>(measure: () => number, fn: () => Promise<T>): Promise<[T, Spent]> {
  const cpu0 = measure();
  const wall0 = process.hrtime.bigint();
  const value = await fn();
  return [value, { cpuNs: measure() - cpu0, wallNs: Number(process.hrtime.bigint() - wall0) }];
}

/** What a process uses doing nothing, so the load's share can be told from its fixed cost. */
const idle = (measure: () => number) => cpuOver(measure, () => sleep(IDLE_S * 1000)).then(([, s]) => s);

/** This process's CPU ns (the tower runs here). */
const ownCpuNs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};

/** HAProxy's `show stat` over its stats socket: a row per proxy and server, by column. */
function showStat(socket: string): Promise<Record<string, string>[]> {
  return new Promise((resolve, reject) => {
    let text = '';
    const c = createConnection(socket, () => c.write('show stat\n'));
    c.on('data', (d: Buffer) => {
      text += d.toString();
    });
    c.on('error', reject);
    c.on('end', () => {
      const [header = '', ...lines] = text.trim().split('\n');
      const cols = header.replace(/^# /, '').split(',');
      resolve(lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i] ?? `${i}`, v]))));
    });
  });
}

interface TacmeshView {
  truth: Truth;
  row: ServiceRow;
  edge: ServiceGraph['edges'][number] | undefined;
  node: Spent;
  nodeIdle: Spent;
  bpf: { programs: number; ns: number; runs: number };
  tower: Spent;
  towerIdle: Spent;
  nodeRss: number;
}

async function tacmeshPhase(): Promise<TacmeshView> {
  const node = rig.startNode();
  try {
    await waitFor('node1 connected', async () => {
      const { body } = await rig.api('nodes');
      return JSON.parse(body).find((n: { name: string; connected: boolean }) => n.connected);
    });
    await sleep(1000);
    const pid = node.child.pid as number;
    const [nodeIdle, towerIdle] = await Promise.all([idle(() => treeCpuNs(pid)), idle(ownCpuNs)]);
    const bpf0 = heldBpfRunTime(pid);
    const [[truth, nodeSpent], tower] = await cpuOver(ownCpuNs, () =>
      withBpfStats(() =>
        cpuOver(
          () => treeCpuNs(pid),
          () => load(`http://${rig.server}`),
        ),
      ),
    );
    const bpf1 = heldBpfRunTime(pid);
    const nodeRss = rssBytes(pid);
    const window = `from=${truth.startMs}&to=${truth.endMs + 1}`;
    // The roll-up takes whole 10 s periods once they are 10 s old: wait for the last one.
    const deadline = truth.endMs + 45_000;
    const row = await waitFor(
      'the tower to roll up the load',
      async () => {
        const rows = JSON.parse((await rig.api(`services?${window}`)).body) as ServiceRow[];
        const c2 = rows.find((r) => r.name === 'c2');
        return c2 && (c2.requests >= truth.sent || Date.now() > deadline) ? c2 : undefined;
      },
      60_000,
    );
    const graph = JSON.parse((await rig.api(`services/graph?${window}`)).body) as ServiceGraph;
    return {
      truth,
      row,
      edge: graph.edges.find((e) => e.from === 'console' && e.to === 'c2'),
      node: nodeSpent,
      nodeIdle,
      bpf: { programs: bpf1.programs, ns: bpf1.ns - bpf0.ns, runs: bpf1.runs - bpf0.runs },
      tower,
      towerIdle,
      nodeRss,
    };
  } finally {
    await stopChild(node.child, 5000);
  }
}

interface ProxyView {
  truth: Truth;
  frontend: Record<string, string>;
  backend: Record<string, string>;
  log: { status: number; trMs: number; taMs: number }[];
  spent: Spent;
  idle: Spent;
  rss: number;
}

async function haproxyPhase(): Promise<ProxyView> {
  const socket = `${rig.dir}/haproxy.sock`;
  const config = `${rig.dir}/haproxy.cfg`;
  // Two threads, as Istio measures its sidecar; a log line per request: status, Tr (the
  // server's response time as the proxy sees it) and Ta (request to last byte sent back).
  writeFileSync(
    config,
    `global
  nbthread 2
  log stdout format raw local0
  stats socket ${socket} mode 600 level user
defaults
  mode http
  log global
  log-format "%ST %Tr %Ta"
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend c2
  bind ${rig.server}:${PROXY_PORT}
  default_backend c2
backend c2
  server app 127.0.0.1:80
`,
  );
  const proxy = new Tool(rig.lab.spawn(rig.n1, 'haproxy', ['-db', '-f', config]));
  try {
    await waitFor('the stats socket of haproxy', async () => (existsSync(socket) ? true : undefined), 10_000);
    const pid = proxy.child.pid as number;
    const idleSpent = await idle(() => treeCpuNs(pid));
    const [truth, spent] = await cpuOver(
      () => treeCpuNs(pid),
      () => load(`http://${rig.server}:${PROXY_PORT}`),
    );
    const rss = rssBytes(pid);
    await sleep(500); // the last log lines
    const stats = await showStat(socket);
    const log = proxy.stdout
      .split('\n')
      .map((l) => /^(\d{3}) (-?\d+) (-?\d+)$/.exec(l))
      .filter((m) => m !== null)
      .map((m) => ({ status: Number(m[1]), trMs: Number(m[2]), taMs: Number(m[3]) }));
    const of = (sv: string) => stats.find((r) => r.pxname === 'c2' && r.svname === sv) ?? {};
    return { truth, frontend: of('FRONTEND'), backend: of('BACKEND'), log, spent, idle: idleSpent, rss };
  } finally {
    await stopChild(proxy.child);
  }
}

let result: { direct: Truth; tacmesh: TacmeshView; proxy: ProxyView; directAgain: Truth };
try {
  await rig.start({
    services: [
      {
        name: 'c2',
        precedence: 'flash',
        instances: [{ node: 'node1', address: rig.server, port: 80, protocol: 'http' }],
      },
      {
        name: 'console',
        precedence: 'routine',
        instances: [{ node: 'node1', address: client, port: 0, protocol: 'http' }],
      },
    ],
  });
  console.error(`[bench] direct (${COUNT} requests at ${RPS}/s)`);
  const direct = await load(`http://${rig.server}`);
  console.error('[bench] tacmesh');
  const tacmesh = await tacmeshPhase();
  console.error('[bench] haproxy');
  const proxy = await haproxyPhase();
  console.error('[bench] direct again');
  const directAgain = await load(`http://${rig.server}`);
  result = { direct, tacmesh, proxy, directAgain };
} finally {
  await rig.stop();
}

const { direct, tacmesh, proxy, directAgain } = result;
const num = (x: number | null | undefined, d = 2) =>
  x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d);
const ratio = (a: number | null | undefined, b: number) =>
  a === null || a === undefined || Number.isNaN(a) || !b ? '—' : (a / b).toFixed(3);
const cpuInfo = cpus();
console.log(
  `\nbench/services — ${new Date().toISOString().slice(0, 10)}, ${cpuInfo.length} × ${cpuInfo[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; ${COUNT} requests at ${RPS}/s per phase, server delay ${DELAY_MS} ms, statuses ${MIX.join(' ')} (hidden)\n`,
);

const t = tacmesh.truth;
const p = proxy.truth;
const tLat = t.latenciesMs;
const pLat = p.latenciesMs;
const errPct = (x: Truth) => (100 * (ofClass(x.statuses, 4) + ofClass(x.statuses, 5))) / x.sent;
const logOf = (cls: number) => proxy.log.filter((l) => Math.floor(l.status / 100) === cls).length;
const tr = proxy.log.map((l) => l.trMs);
const ta = proxy.log.map((l) => l.taMs);
const fe = (k: string) => Number(proxy.frontend[k] ?? Number.NaN);
const feReq = fe('req_tot');

console.log('accuracy: each against the generator of its own phase (truth)');
console.log('| signal | truth | tacmesh | ÷ truth | truth | HAProxy (stats; log) | ÷ truth |');
console.log('|---|---|---|---|---|---|---|');
const acc = (what: string, tt: number, tv: number | null, pt: number, pv: number | null, pvText?: string) =>
  console.log(
    `| ${what} | ${num(tt)} | ${num(tv)} | ${ratio(tv, tt)} | ${num(pt)} | ${pvText ?? num(pv)} | ${ratio(pv, pt)} |`,
  );
acc('requests', t.sent, tacmesh.row.requests, p.sent, feReq, `${feReq}; ${proxy.log.length}`);
acc('requests/s', t.sent / seconds(t), tacmesh.row.rps, p.sent / seconds(p), feReq / seconds(p));
for (const [cls, key] of [
  [4, 'errors4xx'],
  [5, 'errors5xx'],
] as const) {
  const stat = fe(`hrsp_${cls}xx`);
  acc(
    `${cls}xx`,
    ofClass(t.statuses, cls),
    tacmesh.row[key],
    ofClass(p.statuses, cls),
    stat,
    `${stat}; ${logOf(cls)}`,
  );
}
acc('error %', errPct(t), tacmesh.row.errorPct, errPct(p), (100 * (fe('hrsp_4xx') + fe('hrsp_5xx'))) / feReq);
for (const [q, key] of [
  [0.5, 'p50Ms'],
  [0.95, 'p95Ms'],
  [0.99, 'p99Ms'],
] as const)
  acc(
    `server p${q * 100} ms (tacmesh: at the server's node; HAProxy: Tr, log)`,
    quantile(tLat, q),
    tacmesh.row[key],
    quantile(pLat, q),
    quantile(tr, q),
  );
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
acc(
  'server mean ms (HAProxy: rtime, stats)',
  mean(tLat),
  null,
  mean(pLat),
  Number(proxy.backend.rtime ?? Number.NaN),
);
for (const q of [0.5, 0.95, 0.99])
  acc(
    `client p${q * 100} ms (tacmesh: at the client's node; HAProxy: Ta, log)`,
    quantile(tLat, q),
    q === 0.95 ? tacmesh.row.clientP95Ms : null,
    quantile(pLat, q),
    quantile(ta, q),
  );
const e = tacmesh.edge;
console.log(
  `| graph edge console → c2: requests, req/s, error %, p95 ms | ${t.sent}, ${num(t.sent / seconds(t))}, ${num(errPct(t))}, ${num(quantile(tLat, 0.95))} | ${e ? `${e.requests}, ${num(e.rps)}, ${num(e.errorPct)}, ${num(e.p95Ms)}` : 'no edge'} | ${ratio(e?.requests, t.sent)} (requests) | | | |`,
);
console.log(
  `\n(The server's time lies between the ${DELAY_MS} ms delay and the client's; the client's node is the server's here, one veth apart, so tacmesh's client p95 is its server p95. HAProxy's timers are whole ms.)`,
);

const directP = (q: number) => (quantile(direct.latenciesMs, q) + quantile(directAgain.latenciesMs, q)) / 2;
console.log('\ncost: client latency (the generator, ms)');
console.log('| | direct | direct again | tacmesh (eBPF on) | through HAProxy | HAProxy ÷ tacmesh added |');
console.log('|---|---|---|---|---|---|');
for (const q of [0.5, 0.99]) {
  const base = directP(q);
  const addT = quantile(tLat, q) - base;
  const addP = quantile(pLat, q) - base;
  console.log(
    `| p${q * 100} | ${num(quantile(direct.latenciesMs, q))} | ${num(quantile(directAgain.latenciesMs, q))} | ${num(quantile(tLat, q))} | ${num(quantile(pLat, q))} | |`,
  );
  console.log(
    `| p${q * 100} added (against the mean of both direct runs) | | | ${num(addT)} | ${num(addP)} | ${ratio(addP, addT)} |`,
  );
  console.log(
    `| p${q * 100}: the baseline's own spread (direct again − direct) | | ${num(quantile(directAgain.latenciesMs, q) - quantile(direct.latenciesMs, q))} | | | |`,
  );
}

/** vCPU per 1,000 requests/s, all of it: CPU seconds per 1,000 requests served. */
const perK = (cpuNs: number, requests: number) => cpuNs / 1e9 / (requests / 1000);
/** The same without what the process uses idle over as long. */
const aboveIdle = (x: Spent, idleOf: Spent, requests: number) =>
  perK(x.cpuNs - (idleOf.cpuNs / idleOf.wallNs) * x.wallNs, requests);
const idleV = (x: Spent) => x.cpuNs / x.wallNs;
const bpfV = perK(tacmesh.bpf.ns, t.sent);
const tacmeshRow = {
  all: perK(tacmesh.node.cpuNs, t.sent) + bpfV,
  above: aboveIdle(tacmesh.node, tacmesh.nodeIdle, t.sent) + bpfV,
};
const proxyRow = { all: perK(proxy.spent.cpuNs, p.sent), above: aboveIdle(proxy.spent, proxy.idle, p.sent) };
const mb = (b: number) => b / 2 ** 20;
console.log('\ncost: CPU per 1,000 requests/s and memory');
console.log(
  '| | tacmesh (node process + eBPF) | HAProxy process | Istio sidecar (1.24) | Istio ztunnel (1.24) | tacmesh ÷ HAProxy | tacmesh ÷ sidecar | tacmesh ÷ ztunnel | HAProxy ÷ sidecar |',
);
console.log('|---|---|---|---|---|---|---|---|---|');
const costRow = (what: string, tv: number, pv: number, digits: number) =>
  console.log(
    `| ${what} | ${num(tv, digits)} | ${num(pv, digits)} | ${ISTIO.sidecar.vcpu} | ${ISTIO.ztunnel.vcpu} | ${ratio(tv, pv)} | ${ratio(tv, ISTIO.sidecar.vcpu)} | ${ratio(tv, ISTIO.ztunnel.vcpu)} | ${ratio(pv, ISTIO.sidecar.vcpu)} |`,
  );
costRow('vCPU per 1,000 req/s, all of it', tacmeshRow.all, proxyRow.all, 3);
costRow('vCPU per 1,000 req/s, above idle', tacmeshRow.above, proxyRow.above, 3);
console.log(
  `| of which eBPF (bpf_stats) | ${num(bpfV, 4)} | | | | | | | |\n| idle vCPU (${IDLE_S} s before the load) | ${num(idleV(tacmesh.nodeIdle), 4)} | ${num(idleV(proxy.idle), 4)} | | | | | | |`,
);
console.log(
  `| resident memory MB | ${num(mb(tacmesh.nodeRss), 1)} | ${num(mb(proxy.rss), 1)} | ${ISTIO.sidecar.mb} | ${ISTIO.ztunnel.mb} | ${ratio(tacmesh.nodeRss, proxy.rss)} | ${ratio(mb(tacmesh.nodeRss), ISTIO.sidecar.mb)} | ${ratio(mb(tacmesh.nodeRss), ISTIO.ztunnel.mb)} | ${ratio(mb(proxy.rss), ISTIO.sidecar.mb)} |`,
);
console.log(
  `\n(eBPF: ${tacmesh.bpf.programs} programs held by the node, ${tacmesh.bpf.runs} runs, ${num(tacmesh.bpf.ns / Math.max(1, tacmesh.bpf.runs), 0)} ns per run. The tower, one for every node and not in the path (this process): ${num(perK(tacmesh.tower.cpuNs, t.sent), 3)} vCPU per 1,000 req/s, ${num(aboveIdle(tacmesh.tower, tacmesh.towerIdle, t.sent), 3)} above idle. HAProxy runs 2 threads, as Istio's sidecar is measured with 2 workers; its CPU includes the second hop's socket work. Istio's figures are its own load test's, on other machines: a reference, not a peer.)`,
);
