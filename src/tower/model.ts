/**
 * The tower's typed records, between its stages: ingest produces them from the wire,
 * the stores persist them, the API reads them back.
 */

import type { IfaceKind } from '../node/monitor/records.js';

export type { IfaceKind };

export type Locality = 'intra' | 'inter' | 'external';

export interface Position {
  lat: number;
  lon: number;
}

/** What every stored record of a node's traffic has: its identity and where it was seen. */
export interface SeenOnWire {
  node: string;
  seq: number;
  /** ms since the epoch: a flow's interval end (lastSeen), an HTTP line's time. */
  timeMs: number;
  iface: string;
  /** A container's or VM's switch port, or another interface; null from nodes too old to say. */
  ifaceKind: IfaceKind | null;
  direction: 'ingress' | 'egress';
  ipVersion: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  locality: Locality;
}

/** A flow record as stored: the node's record plus what the tower knows of its ends. */
export interface FlowRow extends SeenOnWire {
  protocol: number;
  packets: number;
  bytes: number;
  tcpFlags: number;
  dscp: number;
  firstSeenMs: number;
  /** The node whose subnets hold each end, if any. */
  srcNode: string | null;
  dstNode: string | null;
}

export interface HttpRow extends SeenOnWire {
  response: boolean;
  method: string;
  url: string;
  host: string;
  status: number;
  version: string;
  truncated: boolean;
}

export interface StatsRow {
  node: string;
  seq: number;
  timeMs: number;
  activeFlows: number;
  packetsSeen: number;
  bytesSeen: number;
  flowMapFull: number;
  httpEvents: number;
  eventsDropped: number;
  malformed: number;
  recordsLost: number;
  /** HTTP events the kernel left out by sampling (1 in N), cumulative; NULL in rows from before schema 2. */
  l7SampledOut: number;
}

/** A radio link as one node measured it (docs/mesh.md); rates in bit/s, RTTs null when none. */
export interface LinkRow {
  node: string;
  seq: number;
  timeMs: number;
  iface: string;
  address: string;
  neighbour: string;
  state: 'up' | 'degraded' | 'down';
  why: string[];
  sinceMs: number;
  probesSent: number;
  probesAnswered: number;
  rttMinMs: number | null;
  rttMeanMs: number | null;
  rttP95Ms: number | null;
  jitterMs: number | null;
  lossForwardPct: number;
  lossBackwardPct: number;
  capacityBps: number;
  maxCapacityBps: number;
  capacityFrom: 'dlep' | 'config';
  loadTxBps: number;
  loadRxBps: number;
  utilization: number;
  rttMedianMs: number | null;
}

/** A node's routing table at one moment (docs/mesh.md): every route shares the report's seq. */
export interface RouteReportRow {
  node: string;
  seq: number;
  timeMs: number;
  source: 'babel' | 'kernel';
  routes: {
    prefix: string;
    /** The next hop's address; empty for the node's own prefixes. */
    via: string;
    iface: string;
    metric: number;
    sinceMs: number;
  }[];
}

/** One route of a report as the store keeps it: a row per route, each with the report's seq and time. */
export interface MeshRouteRow {
  timeMs: number;
  node: string;
  seq: number;
  source: RouteReportRow['source'];
  prefix: string;
  via: string;
  iface: string;
  metric: number;
  sinceMs: number;
}

/** One batch from one node, decoded and classified, stored whole. */
export interface IngestBatch {
  node: string;
  firstSeq: number;
  lastSeq: number;
  flows: FlowRow[];
  http: HttpRow[];
  stats: StatsRow[];
  links: LinkRow[];
  routes: RouteReportRow[];
}

/** One minute of one address pair's flows, rolled up (the store's flows_1m). */
export interface FlowMinuteRow {
  minuteMs: number;
  node: string;
  src: string;
  dst: string;
  protocol: number;
  locality: Locality;
  srcNode: string | null;
  dstNode: string | null;
  packets: number;
  bytes: number;
  records: number;
}

/** One bucket of a latency histogram (table http_latency, docs/services.md). */
export interface HttpLatencyRow {
  periodMs: number;
  node: string;
  client: string;
  server: string;
  serverPort: number;
  /** status // 100; 0: no response */
  statusClass: number;
  bucket: number;
  n: number;
}

/** How far a roll-up has got: every minute before doneMs is rolled up. */
export interface RollupStateRow {
  name: string;
  doneMs: number;
}

/** A day of a table's raw rows moved into a Parquet file of the archive (store/archive.ts). */
export interface ArchivePartRow {
  tableName: string;
  /** The day's start, ms since the epoch (UTC). */
  dayMs: number;
  /** The file's name in the day's directory. */
  part: string;
  rows: number;
  movedMs: number;
}

export interface AgentEventRow {
  node: string;
  timeMs: number;
  entity: string;
  problem: string;
  action: string;
  ok: boolean;
  cause: string;
  error: string;
  tookMs: number;
}

/** One change of the QoS policy, as the audit log keeps it. */
/**
 * A change an operator (or the demo's scenario) made to the mesh, told to the tower so its
 * events show it beside what the tower saw in answer (GET /api/v1/mesh/events).
 */
export interface MeshStepRow {
  timeMs: number;
  /** the operator's token name */
  who: string;
  /** link-set | link-cut | restore | mgmt-cut | mgmt-restore | traffic-on | traffic-off */
  action: string;
  /** what it acted on: a link "n1-n2", a node "n2", a service, or "all" */
  subject: string;
  /** the line the scenario printed */
  label: string;
}

/** A node's stream to the tower starting to come through a neighbour, or directly again. */
export interface NodeViaRow {
  timeMs: number;
  node: string;
  /** the neighbour; null: directly */
  via: string | null;
}

export interface QosAuditRow {
  timeMs: number;
  /** the operator's token name, or "auto" for the closed loop */
  who: string;
  /** set | refused | auto-lower | auto-restore */
  action: string;
  version: number;
  summary: string;
  /** the policy as set (refused: as submitted) */
  policy: unknown;
}

/** A slice of a node: its subnets behind a bridge. */
export interface Slice {
  name: string;
  subnets: string[];
  bridge: string;
}

/** A node's latest status report, as the tower keeps it. */
export interface NodeStatusReport {
  /** The node's time of the report, ms since the epoch (clamped to the tower's clock). */
  timeMs: number;
  health: string;
  interfaces: { name: string; up: boolean; monitored: boolean }[];
  /** The monitoring settings version the node runs. */
  monitorVersion: number;
}

/** A node as the store keeps it across restarts (the registry's view of it). */
export interface NodeRow {
  name: string;
  subnets: string[];
  slices: Slice[];
  lat: number | null;
  lon: number | null;
  software: string;
  firstSeenMs: number;
  lastSeenMs: number;
  status: NodeStatusReport | null;
  /** As stored; a row from an older tower may lack settings added since. */
  monitor: Partial<MonitorSettings> | null;
}

export interface MonitorSettings {
  l3: boolean;
  l4: boolean;
  l7: boolean;
  sample: number;
  intervalMs: number;
  version: number;
}

export const DEFAULT_MONITOR_SETTINGS: MonitorSettings = {
  l3: true,
  l4: true,
  l7: true,
  sample: 1,
  intervalMs: 1000,
  version: 1,
};
