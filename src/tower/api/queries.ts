/**
 * The dashboard's questions, answered by DuckDB over a time window and the filters, by the
 * counting rules of counting.ts (which the live feed follows too): link-local, multicast and
 * broadcast traffic left out, a conversation a distinct 5-tuple, bytes and packets counted
 * at egress, each HTTP line once.
 */
import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';
import type { Endpoint, LocalityMap } from '../ingest/locality.js';
import type { IfaceKind, Locality } from '../model.js';
import { CONVERSATION_SQL, type Filter, filterSql, httpLineSql, VOLUME_SQL } from './counting.js';
import type {
  Conversation,
  HttpRequest,
  Pair,
  PieSlice,
  Pies,
  Place,
  StatusCounts,
  Summary,
  Talker,
  Throughput,
} from './query-types.js';

export interface Window extends Filter {
  fromMs: number;
  toMs: number;
}

/** The window and the filter, with the counting rules (counting.ts), as one SQL condition. */
export function where(w: Window, params: DuckDBValue[], opts: { locality?: boolean } = {}): string {
  params.push(w.fromMs, w.toMs);
  const time = [`time_ms >= $${params.length - 1}`, `time_ms <= $${params.length}`];
  return [...time, ...filterSql(w, params, opts)].join(' AND ');
}

/** HTTP lines of a window, each once (counting.ts: its copies on other ports and nodes aside). */
function httpOnce(cond: string, response: boolean): string {
  return `SELECT * FROM http WHERE ${cond} AND ${response ? '' : 'NOT '}response
          QUALIFY row_number() OVER (PARTITION BY ${httpLineSql(response)} ORDER BY time_ms) = 1`;
}

async function rows(
  db: DuckDBConnection,
  sql: string,
  params: DuckDBValue[],
): Promise<Record<string, unknown>[]> {
  const r = await db.runAndReadAll(sql, params);
  return r.getRowObjectsJS() as Record<string, unknown>[];
}

const PIE_TOP = 12;

function topWithOther(counts: Map<string, number>): PieSlice[] {
  const sorted = [...counts].sort((a, b) => b[1] - a[1]);
  const top = sorted.slice(0, PIE_TOP).map(([ip, count]) => ({ ip, count }));
  const rest = sorted.slice(PIE_TOP).reduce((s, [, c]) => s + c, 0);
  if (rest > 0) top.push({ ip: 'other', count: rest });
  return top;
}

/** Frequency of each address as either end of a conversation, per locality and overall. */
export async function pies(db: DuckDBConnection, w: Window): Promise<Pies> {
  const params: DuckDBValue[] = [];
  const result = await rows(
    db,
    `WITH f AS (SELECT DISTINCT locality, ${CONVERSATION_SQL} FROM flows WHERE ${where(w, params, { locality: false })}),
          e AS (SELECT locality, src AS ip FROM f UNION ALL SELECT locality, dst AS ip FROM f)
     SELECT locality, ip, count(*)::DOUBLE AS n FROM e GROUP BY ALL`,
    params,
  );
  const by: Record<Locality | 'all', Map<string, number>> = {
    intra: new Map(),
    inter: new Map(),
    external: new Map(),
    all: new Map(),
  };
  for (const r of result) {
    const loc = r.locality as Locality;
    const ip = String(r.ip);
    const n = Number(r.n);
    by[loc]?.set(ip, (by[loc].get(ip) ?? 0) + n);
    by.all.set(ip, (by.all.get(ip) ?? 0) + n);
  }
  return {
    intra: topWithOther(by.intra),
    inter: topWithOther(by.inter),
    external: topWithOther(by.external),
    all: topWithOther(by.all),
  };
}

export async function summary(db: DuckDBConnection, w: Window): Promise<Summary> {
  const p1: DuckDBValue[] = [];
  const [f] = await rows(
    db,
    `SELECT count(DISTINCT (${CONVERSATION_SQL}))::DOUBLE AS conversations,
            coalesce(sum(bytes) FILTER (WHERE ${VOLUME_SQL}), 0)::DOUBLE AS bytes,
            count(*)::DOUBLE AS records
     FROM flows WHERE ${where(w, p1)}`,
    p1,
  );
  const p2: DuckDBValue[] = [];
  const [h] = await rows(
    db,
    `WITH h AS ((${httpOnce(where(w, p2), false)}) UNION ALL (${httpOnce(where(w, p2), true)}))
     SELECT count(*) FILTER (WHERE NOT response)::DOUBLE AS requests,
            count(*) FILTER (WHERE response AND status >= 400)::DOUBLE AS errors
     FROM h`,
    p2,
  );
  return {
    conversations: Number(f?.conversations ?? 0),
    bytes: Number(f?.bytes ?? 0),
    flowRecords: Number(f?.records ?? 0),
    httpRequests: Number(h?.requests ?? 0),
    httpErrors: Number(h?.errors ?? 0),
  };
}

export async function topTalkers(db: DuckDBConnection, w: Window, limit = 20): Promise<Talker[]> {
  const params: DuckDBValue[] = [];
  const result = await rows(
    db,
    `SELECT src, dst, locality, sum(bytes)::DOUBLE AS bytes, sum(packets)::DOUBLE AS packets,
            count(DISTINCT (${CONVERSATION_SQL}))::DOUBLE AS conversations
     FROM flows WHERE ${where(w, params)} AND ${VOLUME_SQL}
     GROUP BY ALL ORDER BY bytes DESC LIMIT ${Math.min(Math.max(1, limit), 1000)}`,
    params,
  );
  return result.map((r) => ({
    src: String(r.src),
    dst: String(r.dst),
    locality: r.locality as Locality,
    bytes: Number(r.bytes),
    packets: Number(r.packets),
    conversations: Number(r.conversations),
  }));
}

/** Bits per second per node (or per interface when a node is chosen), in buckets of stepMs. */
export async function throughput(db: DuckDBConnection, w: Window, stepMs: number): Promise<Throughput> {
  const step = Math.max(1000, Math.round(stepMs));
  const params: DuckDBValue[] = [];
  const key = w.node ? 'iface' : 'node';
  const result = await rows(
    db,
    `SELECT ${key} AS series, ((time_ms // ${step}) * ${step})::DOUBLE AS t, (sum(bytes) * 8 * 1000 / ${step})::DOUBLE AS bps
     FROM flows WHERE ${where(w, params)} AND ${VOLUME_SQL} GROUP BY ALL ORDER BY t`,
    params,
  );
  const series = new Map<string, [number, number][]>();
  for (const r of result) {
    const name = String(r.series);
    if (!series.has(name)) series.set(name, []);
    series.get(name)?.push([Number(r.t), Number(r.bps)]);
  }
  return { stepMs: step, series: Object.fromEntries(series) };
}

export interface ConversationFilter {
  /** Only records whose packets carried this DSCP. */
  dscp?: number | undefined;
  limit?: number | undefined;
}

/**
 * The window's conversations, one entry per DSCP value each was marked with, biggest first:
 * what checking QoS marking reads (does the voice class leave as EF, what did the policer
 * re-mark), with the TCP flags seen (a lone SYN, a RST).
 */
export async function conversations(
  db: DuckDBConnection,
  w: Window,
  f: ConversationFilter = {},
): Promise<Conversation[]> {
  const params: DuckDBValue[] = [];
  let cond = where(w, params);
  if (f.dscp !== undefined) {
    params.push(f.dscp);
    cond += ` AND dscp = $${params.length}`;
  }
  const result = await rows(
    db,
    `SELECT ${CONVERSATION_SQL}, locality, dscp, bit_or(tcp_flags)::INTEGER AS tcp_flags,
            coalesce(sum(bytes) FILTER (WHERE ${VOLUME_SQL}), 0)::DOUBLE AS bytes,
            coalesce(sum(packets) FILTER (WHERE ${VOLUME_SQL}), 0)::DOUBLE AS packets,
            count(*)::DOUBLE AS records, min(first_seen_ms)::DOUBLE AS first_seen, max(time_ms)::DOUBLE AS last_seen
     FROM flows WHERE ${cond}
     GROUP BY ALL ORDER BY bytes DESC, records DESC, src, dst, src_port, dst_port, dscp
     LIMIT ${Math.min(Math.max(1, f.limit ?? 100), 5000)}`,
    params,
  );
  return result.map((r) => ({
    src: String(r.src),
    dst: String(r.dst),
    srcPort: Number(r.src_port),
    dstPort: Number(r.dst_port),
    protocol: Number(r.protocol),
    locality: r.locality as Locality,
    dscp: Number(r.dscp),
    tcpFlags: Number(r.tcp_flags),
    bytes: Number(r.bytes),
    packets: Number(r.packets),
    records: Number(r.records),
    firstSeen: Number(r.first_seen),
    lastSeen: Number(r.last_seen),
  }));
}

export interface HttpFilter {
  status?: number | undefined;
  url?: string | undefined;
  method?: string | undefined;
  limit?: number | undefined;
}

/** Requests with the status of the response that followed on the same connection. */
export async function httpRequests(db: DuckDBConnection, w: Window, f: HttpFilter): Promise<HttpRequest[]> {
  const params: DuckDBValue[] = [];
  const cond = where(w, params);
  let extra = '';
  if (f.url) {
    params.push(`%${f.url}%`);
    extra += ` AND q.url ILIKE $${params.length}`;
  }
  if (f.method) {
    params.push(f.method.toUpperCase());
    extra += ` AND q.method = $${params.length}`;
  }
  if (f.status) {
    params.push(f.status);
    extra += ` AND r.status = $${params.length}`;
  }
  const result = await rows(
    db,
    `WITH req AS (${httpOnce(cond, false)}),
          res AS (${httpOnce(cond, true)})
     SELECT q.time_ms::DOUBLE AS time, q.node, q.iface, q.iface_kind, q.src, q.dst, q.dst_port, q.method, q.url, q.host,
            q.truncated, q.locality, r.status, (r.time_ms - q.time_ms)::DOUBLE AS latency_ms
     FROM req q ASOF LEFT JOIN res r
       ON r.src = q.dst AND r.dst = q.src
      AND r.src_port = q.dst_port AND r.dst_port = q.src_port AND r.time_ms >= q.time_ms
     WHERE true ${extra}
     ORDER BY q.time_ms DESC LIMIT ${Math.min(Math.max(1, f.limit ?? 100), 5000)}`,
    params,
  );
  return result.map((r) => ({
    time: Number(r.time),
    node: String(r.node),
    iface: String(r.iface),
    ifaceKind: r.iface_kind === null ? null : (r.iface_kind as IfaceKind),
    src: String(r.src),
    dst: String(r.dst),
    dstPort: Number(r.dst_port),
    method: String(r.method),
    url: String(r.url),
    host: String(r.host),
    truncated: Boolean(r.truncated),
    locality: r.locality as Locality,
    status: r.status === null ? null : Number(r.status),
    latencyMs: r.latency_ms === null ? null : Number(r.latency_ms),
  }));
}

export async function httpStatus(db: DuckDBConnection, w: Window): Promise<StatusCounts> {
  const params: DuckDBValue[] = [];
  const result = await rows(
    db,
    `SELECT status, count(*)::DOUBLE AS n FROM (${httpOnce(where(w, params), true)}) GROUP BY status ORDER BY status`,
    params,
  );
  return result.map((r) => ({ status: Number(r.status), count: Number(r.n) }));
}

/** Conversation ends with where they are, for the map. */
export async function endpointPairs(
  db: DuckDBConnection,
  w: Window,
  places: LocalityMap,
  limit = 500,
): Promise<Pair[]> {
  const params: DuckDBValue[] = [];
  const result = await rows(
    db,
    `SELECT src, dst, locality, count(DISTINCT (${CONVERSATION_SQL}))::DOUBLE AS conversations,
            sum(bytes)::DOUBLE AS bytes
     FROM flows WHERE ${where(w, params)} GROUP BY ALL ORDER BY conversations DESC LIMIT ${Math.min(limit, 5000)}`,
    params,
  );
  const place = (e: Endpoint): Place => ({ node: e.node, position: e.position, label: e.label });
  return result.map((r) => ({
    src: String(r.src),
    dst: String(r.dst),
    locality: r.locality as Locality,
    conversations: Number(r.conversations),
    bytes: Number(r.bytes),
    srcPlace: place(places.endpoint(String(r.src))),
    dstPlace: place(places.endpoint(String(r.dst))),
  }));
}

/**
 * The seqs of one node's stored records made in the window, as runs of consecutive seqs,
 * and how many rows hold them: what an operator checks after a cut or a path change — a
 * gap is a record lost, more rows than seqs a record stored twice.
 */
export async function nodeSeqs(db: DuckDBConnection, node: string, w: Window) {
  const mine = 'node = $1 AND time_ms >= $2 AND time_ms <= $3';
  const sources = [
    ...['flows', 'http', 'monitor_stats', 'mesh_links'].map(
      (t) => `SELECT seq, 1 AS copies FROM ${t} WHERE ${mine}`,
    ),
    // A route report is a row per route, all with its seq: stored twice, each prefix twice.
    `SELECT seq, count(*) // count(DISTINCT prefix) AS copies FROM mesh_routes WHERE ${mine} GROUP BY seq`,
  ].join(' UNION ALL ');
  const r = await db.runAndReadAll(
    `WITH s AS (${sources}), d AS (SELECT seq, sum(copies) AS n FROM s GROUP BY seq),
          g AS (SELECT seq, n, seq - row_number() OVER (ORDER BY seq) AS run FROM d)
     SELECT min(seq)::DOUBLE AS lo, max(seq)::DOUBLE AS hi, sum(n)::DOUBLE AS rows FROM g GROUP BY run ORDER BY lo`,
    [node, w.fromMs, w.toMs],
  );
  const runs = r.getRowObjectsJS().map((x) => ({ lo: Number(x.lo), hi: Number(x.hi), rows: Number(x.rows) }));
  return {
    node,
    runs: runs.map((x) => [x.lo, x.hi]),
    seqs: runs.reduce((n, x) => n + x.hi - x.lo + 1, 0),
    rows: runs.reduce((n, x) => n + x.rows, 0),
  };
}
