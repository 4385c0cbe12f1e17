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
 */
import { type MetricDef, one, PromMetrics } from '../shared/metrics.js';
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
];

export function nodeMetrics(node: string, snapshot: () => NodeSnapshot): PromMetrics<NodeSnapshot> {
  return new PromMetrics('tacmesh_node_', { node }, NODE_METRICS, snapshot);
}
