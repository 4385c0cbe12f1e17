/**
 * The node's Prometheus metrics (`tacmesh node run --metrics-listen`), all prefixed
 * `tacmesh_node_`, label `node`:
 *
 *   packets_seen_total            packets the monitor saw (kernel counter)
 *   bytes_seen_total              bytes the monitor saw
 *   flows_active                  flows in the kernel's flow table at the last read
 *   flow_map_capacity             entries the flow table holds; fill = flows_active / this
 *   flow_map_full_total           new flows not tracked because the table was full
 *   flow_records_total            flow records exported
 *   http_events_total             HTTP lines the kernel reported
 *   events_dropped_total          HTTP events lost because the ring buffer was full
 *   malformed_total               packets the parser gave up on
 *   read_seconds                  wall time of the last read of the flow table
 *   export_lag_seconds            age of the newest batch the tower acknowledged, while batches wait (0: none waits)
 *   tower_up                      1 while the tower link is up
 *   tower_reconnects_total        times the link came back after going down
 *   batches_acked_total           batches the tower acknowledged
 *   records_resent_total          records sent again from the spool after a reconnect
 *   spool_bytes                   bytes in the on-disk spool
 *   spool_records                 records in the spool not yet acknowledged
 *   spool_lost_records_total      records dropped because the spool was full (also sent to the tower)
 *   ipfix_records_total           flow records exported over IPFIX (when --ipfix is set)
 *
 * and per radio link (labels `iface`, `neighbour`; docs/mesh.md), from the mesh stage's last report:
 *
 *   mesh_link_state               1 for the link's state, 0 for the others (label `state`: up, degraded, down)
 *   mesh_link_rtt_seconds         mean round-trip time of the STAMP probes (absent while none is answered)
 *   mesh_link_rtt_p95_seconds     95th percentile of it
 *   mesh_link_jitter_seconds      mean difference between consecutive round-trip times
 *   mesh_link_loss_ratio          probes lost (label `direction`: out, towards the neighbour; in, back)
 *   mesh_link_capacity_bps        the link's rate now, bit/s (the radio's over DLEP, else rateMbit)
 *   mesh_link_load_bps            bit/s on the interface (label `direction`: tx, rx)
 *   mesh_link_utilization_ratio   the busier direction's load over capacity
 */
import { type MetricDef, one, PromMetrics, type Sample } from '../shared/metrics.js';
import type { LinkReport } from './mesh/stage.js';
import type { MonitorStats } from './monitor/records.js';

export interface NodeSnapshot {
  stats: MonitorStats | undefined;
  flowMapCapacity: number;
  flowRecords: number;
  exportLagMs: number;
  towerUp: boolean;
  reconnects: number;
  batchesAcked: number;
  recordsResent: number;
  spoolBytes: number;
  spoolRecords: number;
  spoolLost: number;
  ipfixRecords: number | undefined;
  /** The mesh stage's last report of each radio link. */
  links: LinkReport[];
}

type Def = MetricDef<NodeSnapshot>;
const counter = (name: string, help: string, value: (s: NodeSnapshot) => number | undefined): Def => ({
  name,
  help,
  type: 'counter',
  samples: (s) => one(value(s)),
});
const gauge = (name: string, help: string, value: (s: NodeSnapshot) => number | undefined): Def => ({
  name,
  help,
  type: 'gauge',
  samples: (s) => one(value(s)),
});

/** A gauge per radio link (and per `extra` label value, when the value function gives several). */
const linkGauge = (
  name: string,
  help: string,
  extra: string[],
  values: (l: LinkReport) => { labels?: Record<string, string>; value: number | null | undefined }[],
): Def => ({
  name: `mesh_link_${name}`,
  help,
  type: 'gauge',
  labelNames: ['iface', 'neighbour', ...extra],
  samples: (s) =>
    s.links.flatMap((l) =>
      values(l).flatMap(({ labels, value }): Sample[] =>
        value === null || value === undefined
          ? []
          : [{ labels: { iface: l.iface, neighbour: l.neighbour, ...labels }, value }],
      ),
    ),
});
const seconds = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : ms / 1000);

const LINK_METRICS: Def[] = [
  linkGauge('state', "1 for the link's state (up, degraded, down), 0 for the others", ['state'], (l) =>
    (['up', 'degraded', 'down'] as const).map((state) => ({
      labels: { state },
      value: l.state === state ? 1 : 0,
    })),
  ),
  linkGauge('rtt_seconds', 'mean round-trip time of the STAMP probes', [], (l) => [
    { value: seconds(l.probe.rttMs?.mean) },
  ]),
  linkGauge('rtt_p95_seconds', '95th percentile round-trip time of the STAMP probes', [], (l) => [
    { value: seconds(l.probe.rttMs?.p95) },
  ]),
  linkGauge('jitter_seconds', 'mean difference between consecutive round-trip times', [], (l) => [
    { value: seconds(l.probe.jitterMs) },
  ]),
  linkGauge('loss_ratio', 'probes lost towards the neighbour (out) and back (in)', ['direction'], (l) => [
    { labels: { direction: 'out' }, value: l.probe.lossForwardPct / 100 },
    { labels: { direction: 'in' }, value: l.probe.lossBackwardPct / 100 },
  ]),
  linkGauge('capacity_bps', "the link's rate now, bit/s (the radio's over DLEP, else rateMbit)", [], (l) => [
    { value: l.capacityBps },
  ]),
  linkGauge('load_bps', 'bit/s on the interface, sent (tx) and received (rx)', ['direction'], (l) => [
    { labels: { direction: 'tx' }, value: l.loadBps.tx },
    { labels: { direction: 'rx' }, value: l.loadBps.rx },
  ]),
  linkGauge('utilization_ratio', "the busier direction's load over capacity", [], (l) => [
    { value: l.utilization },
  ]),
];

export const NODE_METRICS: Def[] = [
  counter('packets_seen_total', 'packets the monitor saw', (s) => s.stats?.packetsSeen),
  counter('bytes_seen_total', 'bytes the monitor saw', (s) => s.stats?.bytesSeen),
  gauge('flows_active', "flows in the kernel's flow table at the last read", (s) => s.stats?.activeFlows),
  gauge('flow_map_capacity', 'entries the flow table holds', (s) => s.flowMapCapacity),
  counter(
    'flow_map_full_total',
    'new flows not tracked: the flow table was full',
    (s) => s.stats?.flowMapFull,
  ),
  counter('flow_records_total', 'flow records exported', (s) => s.flowRecords),
  counter('http_events_total', 'HTTP lines the kernel reported', (s) => s.stats?.httpEvents),
  counter(
    'events_dropped_total',
    'HTTP events lost: the ring buffer was full',
    (s) => s.stats?.eventsDropped,
  ),
  counter('malformed_total', 'packets the parser gave up on', (s) => s.stats?.malformed),
  gauge('read_seconds', 'wall time of the last read of the flow table', (s) =>
    s.stats ? s.stats.readMs / 1000 : undefined,
  ),
  gauge(
    'export_lag_seconds',
    'age of the newest batch the tower acknowledged, while others wait (0: none waits)',
    (s) => s.exportLagMs / 1000,
  ),
  gauge('tower_up', '1 while the tower link is up', (s) => (s.towerUp ? 1 : 0)),
  counter('tower_reconnects_total', 'times the tower link came back after going down', (s) => s.reconnects),
  counter('batches_acked_total', 'batches the tower acknowledged', (s) => s.batchesAcked),
  counter(
    'records_resent_total',
    'records sent again from the spool after a reconnect',
    (s) => s.recordsResent,
  ),
  gauge('spool_bytes', 'bytes in the on-disk spool', (s) => s.spoolBytes),
  gauge('spool_records', 'records in the spool not yet acknowledged', (s) => s.spoolRecords),
  counter('spool_lost_records_total', 'records dropped: the spool was full', (s) => s.spoolLost),
  counter('ipfix_records_total', 'flow records exported over IPFIX', (s) => s.ipfixRecords),
  ...LINK_METRICS,
];

export function nodeMetrics(node: string, snapshot: () => NodeSnapshot): PromMetrics<NodeSnapshot> {
  return new PromMetrics('tacmesh_node_', { node }, NODE_METRICS, snapshot);
}
