/**
 * The tower's tables in DuckDB, each declared once (columns.ts): a column per field of its
 * row type (src/tower/model.ts), in table order. Times are BIGINT ms since the epoch.
 *
 * Schema versions (catalog.ts migrates a store up to SCHEMA_VERSION when it opens):
 *   1  the tables as the towers before versions created them (CREATE TABLE IF NOT EXISTS)
 *   2  monitor_stats.l7_sampled_out
 *   3  http_latency
 *   4  mesh_links.rtt_median_ms
 *   5  flows.iface_kind, http.iface_kind
 *   6  mesh_steps, node_via
 *   7  archive_parts
 * A new column goes last in its table with `since` the next version; a new table gets
 * `since` on the table. Nothing else is needed: the migration, the appender and the
 * InfluxDB line follow from the declaration.
 */
import type {
  AgentEventRow,
  ArchivePartRow,
  FlowMinuteRow,
  HttpLatencyRow,
  MeshRouteRow,
  MeshStepRow,
  NodeRow,
  NodeViaRow,
  QosAuditRow,
  RollupStateRow,
} from '../model.js';
import { type BatchKey, recordTable, type SomeRecordTable, type Table, table } from './columns.js';

export const FLOWS = recordTable(
  'flows',
  'flows',
  { measurement: 'flow' },
  {
    timeMs: { type: 'BIGINT', time: true },
    node: { type: 'VARCHAR', tag: true },
    seq: 'UBIGINT',
    iface: { type: 'VARCHAR', tag: true },
    direction: { type: 'VARCHAR', tag: true },
    ipVersion: 'UTINYINT',
    src: { type: 'VARCHAR', tag: true },
    dst: { type: 'VARCHAR', tag: true },
    srcPort: 'USMALLINT',
    dstPort: 'USMALLINT',
    protocol: { type: 'UTINYINT', tag: true },
    packets: 'UBIGINT',
    bytes: 'UBIGINT',
    tcpFlags: 'UTINYINT',
    dscp: 'UTINYINT',
    firstSeenMs: 'BIGINT',
    locality: { type: 'VARCHAR', tag: true },
    srcNode: { type: 'VARCHAR', nullable: true },
    dstNode: { type: 'VARCHAR', nullable: true },
    ifaceKind: { type: 'VARCHAR', nullable: true, since: 5 },
  },
);

export const HTTP = recordTable(
  'http',
  'http',
  { measurement: 'http' },
  {
    timeMs: { type: 'BIGINT', time: true },
    node: { type: 'VARCHAR', tag: true },
    seq: 'UBIGINT',
    iface: { type: 'VARCHAR', tag: true },
    direction: 'VARCHAR',
    ipVersion: 'UTINYINT',
    src: 'VARCHAR',
    dst: 'VARCHAR',
    srcPort: 'USMALLINT',
    dstPort: 'USMALLINT',
    response: { type: 'BOOLEAN', tag: true },
    method: 'VARCHAR',
    url: 'VARCHAR',
    host: 'VARCHAR',
    status: 'USMALLINT',
    version: 'VARCHAR',
    truncated: 'BOOLEAN',
    locality: { type: 'VARCHAR', tag: true },
    ifaceKind: { type: 'VARCHAR', nullable: true, since: 5 },
  },
);

export const MONITOR_STATS = recordTable(
  'stats',
  'monitor_stats',
  { measurement: 'monitor' },
  {
    timeMs: { type: 'BIGINT', time: true },
    node: { type: 'VARCHAR', tag: true },
    seq: 'UBIGINT',
    activeFlows: 'UBIGINT',
    packetsSeen: 'UBIGINT',
    bytesSeen: 'UBIGINT',
    flowMapFull: 'UBIGINT',
    httpEvents: 'UBIGINT',
    eventsDropped: 'UBIGINT',
    malformed: 'UBIGINT',
    recordsLost: 'UBIGINT',
    l7SampledOut: { type: 'UBIGINT', since: 2 },
  },
);

/** The nodes' radio links as they measured them (docs/mesh.md); RTTs NULL when unanswered. */
export const MESH_LINKS = recordTable(
  'links',
  'mesh_links',
  { measurement: 'mesh_link' },
  {
    timeMs: { type: 'BIGINT', time: true },
    node: { type: 'VARCHAR', tag: true },
    seq: 'UBIGINT',
    iface: { type: 'VARCHAR', tag: true },
    address: 'VARCHAR',
    neighbour: 'VARCHAR',
    state: 'VARCHAR',
    why: 'JSON',
    sinceMs: 'BIGINT',
    probesSent: 'UINTEGER',
    probesAnswered: 'UINTEGER',
    rttMinMs: { type: 'DOUBLE', nullable: true },
    rttMeanMs: { type: 'DOUBLE', nullable: true },
    rttP95Ms: { type: 'DOUBLE', nullable: true },
    jitterMs: { type: 'DOUBLE', nullable: true },
    lossForwardPct: 'DOUBLE',
    lossBackwardPct: 'DOUBLE',
    capacityBps: 'UBIGINT',
    maxCapacityBps: 'UBIGINT',
    capacityFrom: 'VARCHAR',
    loadTxBps: 'UBIGINT',
    loadRxBps: 'UBIGINT',
    utilization: 'DOUBLE',
    rttMedianMs: { type: 'DOUBLE', nullable: true, since: 4 },
  },
);

/** The nodes' routing tables (docs/mesh.md): a row per route, the rows of one report share its seq. */
export const MESH_ROUTES = recordTable(
  'routes',
  'mesh_routes',
  {
    measurement: 'mesh_route',
    rows: (r): MeshRouteRow[] =>
      r.routes.map((x) => ({ timeMs: r.timeMs, node: r.node, seq: r.seq, source: r.source, ...x })),
  },
  {
    timeMs: { type: 'BIGINT', time: true },
    node: { type: 'VARCHAR', tag: true },
    seq: 'UBIGINT',
    source: { type: 'VARCHAR', tag: true },
    prefix: { type: 'VARCHAR', tag: true },
    via: { type: 'VARCHAR', tag: true },
    iface: 'VARCHAR',
    metric: 'UINTEGER',
    sinceMs: 'BIGINT',
  },
);

/** Every table of a node's records, by its list in IngestBatch: the compiler wants one for each. */
export const RECORD_TABLES: { [K in BatchKey]: SomeRecordTable<K> } = {
  flows: FLOWS,
  http: HTTP,
  stats: MONITOR_STATS,
  links: MESH_LINKS,
  routes: MESH_ROUTES,
};

/** One-minute roll-ups of flows (catalog.ts), kept longer than the raw rows. */
export const FLOWS_1M = table<FlowMinuteRow>(
  'flows_1m',
  { retention: 'rollup' },
  {
    minuteMs: { type: 'BIGINT', time: true },
    node: 'VARCHAR',
    src: 'VARCHAR',
    dst: 'VARCHAR',
    protocol: 'UTINYINT',
    locality: 'VARCHAR',
    srcNode: { type: 'VARCHAR', nullable: true },
    dstNode: { type: 'VARCHAR', nullable: true },
    packets: 'UBIGINT',
    bytes: 'UBIGINT',
    records: 'UBIGINT',
  },
);

/**
 * Request → response latency of each client/server pair as each node saw it, per 10 s
 * period: a row per status class (status // 100; 0: no response) and log bucket, rolled up
 * from http (http-latency.ts, docs/services.md).
 */
export const HTTP_LATENCY = table<HttpLatencyRow>(
  'http_latency',
  { retention: 'rollup', since: 3 },
  {
    periodMs: { type: 'BIGINT', time: true },
    node: 'VARCHAR',
    client: 'VARCHAR',
    server: 'VARCHAR',
    serverPort: 'USMALLINT',
    statusClass: 'UTINYINT',
    bucket: 'UTINYINT',
    n: 'UBIGINT',
  },
);

/** How far each roll-up has got. */
export const ROLLUP_STATE = table<RollupStateRow>(
  'rollup_state',
  {},
  { name: { type: 'VARCHAR', primaryKey: true }, doneMs: 'BIGINT' },
);

export const NODES = table<NodeRow>(
  'nodes',
  {},
  {
    name: { type: 'VARCHAR', primaryKey: true },
    subnets: 'JSON',
    slices: 'JSON',
    lat: { type: 'DOUBLE', nullable: true },
    lon: { type: 'DOUBLE', nullable: true },
    software: 'VARCHAR',
    firstSeenMs: 'BIGINT',
    lastSeenMs: 'BIGINT',
    status: 'JSON',
    monitor: 'JSON',
  },
);

export const AGENT_EVENTS = table<AgentEventRow>(
  'agent_events',
  { retention: 'raw' },
  {
    timeMs: { type: 'BIGINT', time: true },
    node: 'VARCHAR',
    entity: 'VARCHAR',
    problem: 'VARCHAR',
    action: 'VARCHAR',
    ok: 'BOOLEAN',
    cause: 'VARCHAR',
    error: 'VARCHAR',
    tookMs: 'UINTEGER',
  },
);

/** Every change of the QoS policy (an operator's, a refused one, the closed loop's): who, when, what. */
export const QOS_AUDIT = table<QosAuditRow>(
  'qos_audit',
  {},
  {
    timeMs: { type: 'BIGINT', time: true },
    who: 'VARCHAR',
    action: 'VARCHAR',
    version: 'UBIGINT',
    summary: 'VARCHAR',
    policy: 'JSON',
  },
);

/** The operator's (and the demo scenario's) changes to the mesh: the marks on the events' time axis. */
export const MESH_STEPS = table<MeshStepRow>(
  'mesh_steps',
  { retention: 'raw', since: 6 },
  {
    timeMs: { type: 'BIGINT', time: true },
    who: 'VARCHAR',
    action: 'VARCHAR',
    subject: 'VARCHAR',
    label: 'VARCHAR',
  },
);

/** Each time a node's stream to the tower starts coming through a neighbour, or directly again. */
export const NODE_VIA = table<NodeViaRow>(
  'node_via',
  { retention: 'raw', since: 6 },
  {
    timeMs: { type: 'BIGINT', time: true },
    node: 'VARCHAR',
    via: { type: 'VARCHAR', nullable: true },
  },
);

/** Which days of which tables are in the archive's Parquet files, and in which file (archive.ts). */
export const ARCHIVE_PARTS = table<ArchivePartRow>(
  'archive_parts',
  { since: 7 },
  {
    tableName: 'VARCHAR',
    dayMs: 'BIGINT',
    part: 'VARCHAR',
    rows: 'UBIGINT',
    movedMs: 'BIGINT',
  },
);

export const TABLES: Table<never>[] = [
  ...Object.values(RECORD_TABLES),
  FLOWS_1M,
  HTTP_LATENCY,
  ROLLUP_STATE,
  NODES,
  AGENT_EVENTS,
  QOS_AUDIT,
  MESH_STEPS,
  NODE_VIA,
  ARCHIVE_PARTS,
] as Table<never>[];

export const SCHEMA_VERSION = Math.max(...TABLES.flatMap((t) => [t.since, ...t.columns.map((c) => c.since)]));
