/**
 * Golden signals of the registered services over a window, from the latency histograms
 * (http_latency) and the flows: requests/s, 4xx and 5xx apart, p50/p95/p99 of the server's
 * own time, p95 as the client sees it and what the network adds, bytes/s. A pair's counts
 * come from the server's node when it saw the pair, else from the client's.
 */
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';
import type {
  GoldenSignals,
  ServiceGraph,
  ServiceGraphNode,
  ServiceHealth,
  ServiceIntent,
  ServiceRow,
  ServiceSeries,
} from '../api/services-types.js';
import { LATENCY_PERIOD_MS } from '../store/http-latency.js';
import { type Histogram, mergeInto, quantile } from './histogram.js';
import type { HealthThresholds, ServiceInstanceSpec } from './model.js';
import type { RegisteredService } from './registry.js';

export interface SignalWindow {
  fromMs: number;
  toMs: number;
}

interface Tally {
  requests: number;
  e4: number;
  e5: number;
  server: Histogram;
  client: Histogram;
  bytes: number;
}

const tally = (): Tally => ({ requests: 0, e4: 0, e5: 0, server: new Map(), client: new Map(), bytes: 0 });

interface LatencyRow {
  period: number;
  node: string;
  client: string;
  server: string;
  port: number;
  cls: number;
  bucket: number;
  n: number;
}

async function latencyRows(db: DuckDBConnection, w: SignalWindow): Promise<LatencyRow[]> {
  const r = await db.runAndReadAll(
    `SELECT period_ms::DOUBLE AS period, node, client, server, server_port::INTEGER AS port,
            status_class::INTEGER AS cls, bucket::INTEGER AS bucket, sum(n)::DOUBLE AS n
     FROM http_latency WHERE period_ms >= $1 AND period_ms < $2 GROUP BY ALL`,
    [Math.floor(w.fromMs / LATENCY_PERIOD_MS) * LATENCY_PERIOD_MS, w.toMs],
  );
  return r.getRowObjectsJS().map((x) => ({
    period: Number(x.period),
    node: String(x.node),
    client: String(x.client),
    server: String(x.server),
    port: Number(x.port),
    cls: Number(x.cls),
    bucket: Number(x.bucket),
    n: Number(x.n),
  }));
}

/** Bytes both ways of traffic to `to` (and from `from`, if given) at `to`'s node, on its busiest interface. */
async function bytesOf(
  db: DuckDBConnection,
  w: SignalWindow,
  to: ServiceInstanceSpec,
  from?: string,
): Promise<number> {
  const params: DuckDBValue[] = [
    w.fromMs,
    w.toMs,
    to.node,
    to.address,
    to.port,
    to.protocol === 'udp' ? 17 : 6,
  ];
  let peer = '';
  if (from) {
    params.push(from);
    peer = `AND ((dst = $4 AND src = $7) OR (src = $4 AND dst = $7))`;
  }
  const r = await db.runAndReadAll(
    `SELECT coalesce(max(b), 0)::DOUBLE AS b FROM (
       SELECT sum(bytes) AS b FROM flows
       WHERE time_ms >= $1 AND time_ms <= $2 AND node = $3 AND protocol = $6
         AND ((dst = $4 AND dst_port = $5) OR (src = $4 AND src_port = $5)) ${peer}
       GROUP BY iface)`,
    params,
  );
  return Number(r.getRowObjectsJS()[0]?.b ?? 0);
}

/** What the registry says each address and address:port are. */
class Directory {
  private readonly servers = new Map<string, { service: RegisteredService; instance: ServiceInstanceSpec }>();
  private readonly clients = new Map<string, { service: RegisteredService; node: string }>();

  constructor(services: RegisteredService[]) {
    for (const s of services)
      for (const i of s.instances) {
        if (i.port !== 0 && i.protocol === 'http')
          this.servers.set(`${i.address}:${i.port}`, { service: s, instance: i });
        if (!this.clients.has(i.address)) this.clients.set(i.address, { service: s, node: i.node });
      }
  }

  server(address: string, port: number) {
    return this.servers.get(`${address}:${port}`);
  }

  client(address: string) {
    return this.clients.get(address);
  }
}

interface PairKey {
  client: string;
  server: string;
  port: number;
}

/** Tallies per pair (and per period when `byPeriod`), each row counted at the node that fits it. */
function tallyPairs(rows: LatencyRow[], dir: Directory, byPeriod = false) {
  const pairs = new Map<
    string,
    { key: PairKey; service: RegisteredService; t: Tally; serverSeen: boolean }
  >();
  const sawServer = new Set<string>();
  for (const r of rows) {
    const s = dir.server(r.server, r.port);
    if (s && r.node === s.instance.node) sawServer.add(`${r.client}|${r.server}|${r.port}`);
  }
  for (const r of rows) {
    const s = dir.server(r.server, r.port);
    if (!s) continue;
    const pairId = `${r.client}|${r.server}|${r.port}`;
    const id = byPeriod ? `${pairId}|${r.period}` : pairId;
    let p = pairs.get(id);
    if (!p) {
      p = {
        key: { client: r.client, server: r.server, port: r.port },
        service: s.service,
        t: tally(),
        serverSeen: false,
      };
      pairs.set(id, p);
    }
    const atServer = r.node === s.instance.node;
    const atClient = r.node === dir.client(r.client)?.node;
    const countsHere = atServer || (!sawServer.has(pairId) && atClient);
    if (countsHere) {
      p.t.requests += r.n;
      if (r.cls === 4) p.t.e4 += r.n;
      if (r.cls === 5) p.t.e5 += r.n;
    }
    if (r.cls === 0) continue;
    if (atServer) mergeInto(p.t.server, r.bucket, r.n);
    if (atClient) mergeInto(p.t.client, r.bucket, r.n);
  }
  return pairs;
}

function add(into: Tally, t: Tally): void {
  into.requests += t.requests;
  into.e4 += t.e4;
  into.e5 += t.e5;
  into.bytes += t.bytes;
  for (const [b, n] of t.server) mergeInto(into.server, b, n);
  for (const [b, n] of t.client) mergeInto(into.client, b, n);
}

const round = (v: number | null, digits = 2) => (v === null ? null : Number(v.toFixed(digits)));

function signals(t: Tally, seconds: number): GoldenSignals {
  const p95 = quantile(t.server, 0.95);
  const clientP95 = quantile(t.client, 0.95);
  return {
    requests: t.requests,
    rps: round(t.requests / seconds) ?? 0,
    errors4xx: t.e4,
    errors5xx: t.e5,
    errorPct: t.requests ? (round((100 * (t.e4 + t.e5)) / t.requests) ?? 0) : 0,
    p50Ms: round(quantile(t.server, 0.5)),
    p95Ms: round(p95),
    p99Ms: round(quantile(t.server, 0.99)),
    clientP95Ms: round(clientP95),
    networkP95Ms: p95 !== null && clientP95 !== null ? round(Math.max(0, clientP95 - p95)) : null,
    bps: round((8 * t.bytes) / seconds) ?? 0,
  };
}

export function healthOf(g: GoldenSignals, th: HealthThresholds): ServiceHealth {
  if (g.requests === 0) return g.bps > 0 ? 'ok' : 'idle';
  if (g.errorPct >= th.failingAtPct) return 'failing';
  if (g.errorPct > th.degradedAbovePct) return 'degraded';
  return 'ok';
}

const secondsOf = (w: SignalWindow) => Math.max(1, (w.toMs - w.fromMs) / 1000);

export async function serviceRows(
  db: DuckDBConnection,
  services: RegisteredService[],
  w: SignalWindow,
  th: HealthThresholds,
  intentOf: (s: RegisteredService, p95Ms: number | null) => ServiceIntent | null = () => null,
): Promise<ServiceRow[]> {
  const dir = new Directory(services);
  const pairs = tallyPairs(await latencyRows(db, w), dir);
  const out: ServiceRow[] = [];
  for (const s of services) {
    const t = tally();
    for (const p of pairs.values()) if (p.service.name === s.name) add(t, p.t);
    for (const i of s.instances) if (i.port !== 0) t.bytes += await bytesOf(db, w, i);
    const g = signals(t, secondsOf(w));
    out.push({
      name: s.name,
      precedence: s.precedence,
      qosClass: s.qosClass,
      declaredBy: s.declaredBy,
      instances: s.instances,
      objective: s.objective ?? null,
      ...g,
      health: healthOf(g, th),
      intent: intentOf(s, g.p95Ms),
    });
  }
  return out;
}

export async function serviceGraph(
  db: DuckDBConnection,
  services: RegisteredService[],
  w: SignalWindow,
  th: HealthThresholds,
): Promise<ServiceGraph> {
  const rows = await serviceRows(db, services, w, th);
  const dir = new Directory(services);
  const pairs = tallyPairs(await latencyRows(db, w), dir);
  const nodes = new Map<string, ServiceGraphNode>(
    rows.map((r) => [r.name, { id: r.name, kind: 'service', health: r.health, precedence: r.precedence }]),
  );
  const edges = new Map<string, { from: string; to: string; t: Tally; instance: ServiceInstanceSpec }>();
  for (const p of pairs.values()) {
    const from = dir.client(p.key.client)?.service.name ?? p.key.client;
    if (!nodes.has(from)) nodes.set(from, { id: from, kind: 'client', health: 'ok', precedence: null });
    const to = p.service.name;
    const id = `${from}→${to}`;
    let e = edges.get(id);
    const instance = dir.server(p.key.server, p.key.port)?.instance as ServiceInstanceSpec;
    if (!e) {
      e = { from, to, t: tally(), instance };
      edges.set(id, e);
    }
    add(e.t, p.t);
    e.t.bytes += await bytesOf(db, w, instance, p.key.client);
  }
  return {
    nodes: [...nodes.values()],
    edges: [...edges.values()].map((e) => {
      const g = signals(e.t, secondsOf(w));
      return {
        from: e.from,
        to: e.to,
        rps: g.rps,
        requests: g.requests,
        errorPct: g.errorPct,
        p95Ms: g.p95Ms,
        clientP95Ms: g.clientP95Ms,
        networkP95Ms: g.networkP95Ms,
        bps: g.bps,
      };
    }),
    thresholds: th,
  };
}

/** One service step by step, with where its objective was missed. */
export async function serviceSeries(
  db: DuckDBConnection,
  services: RegisteredService[],
  service: RegisteredService,
  w: SignalWindow,
  stepMs: number,
): Promise<ServiceSeries> {
  const step = Math.max(LATENCY_PERIOD_MS, Math.ceil(stepMs / LATENCY_PERIOD_MS) * LATENCY_PERIOD_MS);
  const pairs = tallyPairs(await latencyRows(db, w), new Directory(services), true);
  const bySlot = new Map<number, Tally>();
  for (const [id, p] of pairs) {
    if (p.service.name !== service.name) continue;
    const slot = Math.floor(Number(id.split('|')[3]) / step) * step;
    let t = bySlot.get(slot);
    if (!t) {
      t = tally();
      bySlot.set(slot, t);
    }
    add(t, p.t);
  }
  const o = service.objective;
  const points = [...bySlot.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([timeMs, t]) => {
      const g = signals(t, step / 1000);
      const missed: string[] = [];
      if (o && g.p95Ms !== null && g.p95Ms > o.targetP95Ms)
        missed.push(`p95 ${g.p95Ms} ms > ${o.targetP95Ms} ms`);
      if (o && g.errorPct > o.errorBudgetPct) missed.push(`errors ${g.errorPct} % > ${o.errorBudgetPct} %`);
      return {
        timeMs,
        rps: g.rps,
        errorPct: g.errorPct,
        p95Ms: g.p95Ms,
        breach: missed.length ? missed.join(', ') : null,
      };
    });
  const breaches: ServiceSeries['breaches'] = [];
  for (const p of points) {
    const last = breaches.at(-1);
    if (p.breach && last && last.toMs === p.timeMs && last.what === p.breach) last.toMs = p.timeMs + step;
    else if (p.breach) breaches.push({ fromMs: p.timeMs, toMs: p.timeMs + step, what: p.breach });
  }
  return { name: service.name, objective: o ?? null, stepMs: step, points, breaches };
}
