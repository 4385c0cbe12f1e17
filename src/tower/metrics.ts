/**
 * The tower's Prometheus metrics, on a listener of its own (`metrics.listen` in tower.yaml,
 * unauthenticated, so keep it on loopback or a monitoring network). All prefixed
 * `tacmesh_tower_`:
 *
 *   nodes_connected               nodes with a control stream up
 *   batches_total                 record batches stored
 *   records_stored_total          records stored (rate() of it is the ingest rate)
 *   records_duplicate_total       resent records recognised by (node, seq) and not stored again
 *   store_errors_total            batches the store could not take (the node resends them)
 *   bad_messages_total            batches refused as malformed
 *   refused_total                 connections refused, label reason = tls | revoked | identity | hello | streams | standby
 *   throttled_total               status, events and QoS reports dropped above limits.messagesPerSecond
 *   clamped_times_total           record times clamped to the latest the node's clock can be
 *   seq_gaps_closed_total         gaps in a node's stored seqs closed to keep within limits.seqGapsPerNode
 *   influx_points_total           points written to InfluxDB (when configured)
 *   influx_dropped_total          points dropped while InfluxDB was away too long
 *   live_clients                  dashboard live-feed streams open
 *   bus_connected                 1 while the bus (docs/bus.md) is reachable (with `bus:` only)
 *   bus_stream_messages           messages in the domain's stream
 *   bus_writer_pending            messages the writer has not stored yet (undelivered + unacknowledged)
 *   bus_publish_failures_total    batches the bus did not take (the node resends them)
 *   bus_writer_lag_seconds        age of the oldest message the writer has not stored (0: none)
 *   bus_replica_lag               operations the most behind copy of a replicated stream lags
 *   bus_leader                    1 while this tower holds the leader lease (with bus.lease only)
 *   query_seconds                 API request latency histogram, label route (first path segment)
 */
import { Histogram } from 'prom-client';
import { type MetricDef, one, PromMetrics } from '../shared/metrics.js';
import type { BusHealth } from './bus/connection.js';
import type { ControlCounters } from './control/server.js';

export interface TowerSnapshot {
  nodesConnected: number;
  control: ControlCounters;
  influx: { pointsWritten: number; pointsDropped: number } | undefined;
  liveClients: number;
  bus: (BusHealth & { failures: number; leads: boolean | undefined }) | undefined;
}

type Def = MetricDef<TowerSnapshot>;
const metric = (
  type: 'counter' | 'gauge',
  name: string,
  help: string,
  value: (s: TowerSnapshot) => number | undefined,
): Def => ({ name, help, type, samples: (s) => one(value(s)) });

export const TOWER_METRICS: Def[] = [
  metric('gauge', 'nodes_connected', 'nodes with a control stream up', (s) => s.nodesConnected),
  metric('counter', 'batches_total', 'record batches stored', (s) => s.control.batches),
  metric('counter', 'records_stored_total', 'records stored', (s) => s.control.recordsStored),
  metric(
    'counter',
    'records_duplicate_total',
    'resent records recognised by (node, seq), not stored again',
    (s) => s.control.recordsDuplicate,
  ),
  metric('counter', 'store_errors_total', 'batches the store could not take', (s) => s.control.storeErrors),
  metric('counter', 'bad_messages_total', 'batches refused as malformed', (s) => s.control.badMessages),
  {
    name: 'refused_total',
    help: 'connections refused',
    type: 'counter',
    labelNames: ['reason'],
    samples: (s) => [
      { labels: { reason: 'tls' }, value: s.control.tlsRefused },
      { labels: { reason: 'revoked' }, value: s.control.revokedRefused },
      { labels: { reason: 'identity' }, value: s.control.identityRefused },
      { labels: { reason: 'hello' }, value: s.control.helloRefused },
      { labels: { reason: 'streams' }, value: s.control.streamsRefused },
      { labels: { reason: 'standby' }, value: s.control.standbyRefused },
    ],
  },
  metric('counter', 'throttled_total', 'node messages over the rate', (s) => s.control.messagesThrottled),
  metric('counter', 'clamped_times_total', 'record times clamped', (s) => s.control.timesClamped),
  metric('counter', 'seq_gaps_closed_total', 'gaps in stored seqs closed', (s) => s.control.seqGapsClosed),
  metric('counter', 'influx_points_total', 'points written to InfluxDB', (s) => s.influx?.pointsWritten),
  metric('counter', 'influx_dropped_total', 'points dropped for InfluxDB', (s) => s.influx?.pointsDropped),
  metric('gauge', 'live_clients', 'dashboard live-feed streams open', (s) => s.liveClients),
  metric('gauge', 'bus_connected', '1 while the bus is reachable', (s) =>
    s.bus ? Number(s.bus.connected) : undefined,
  ),
  metric('gauge', 'bus_stream_messages', "messages in the domain's stream", (s) => s.bus?.messages),
  metric(
    'gauge',
    'bus_writer_pending',
    'messages the writer has not stored yet',
    (s) => s.bus && s.bus.pending + s.bus.ackPending,
  ),
  metric(
    'gauge',
    'bus_writer_lag_seconds',
    'age of the oldest message the writer has not stored',
    (s) => s.bus && s.bus.lagMs / 1000,
  ),
  metric(
    'gauge',
    'bus_replica_lag',
    'operations the most behind copy of a replicated stream lags',
    (s) => s.bus && Math.max(0, ...s.bus.replicas.map((r) => r.lag)),
  ),
  metric('counter', 'bus_publish_failures_total', 'batches the bus did not take', (s) => s.bus?.failures),
  metric('gauge', 'bus_leader', '1 while this tower holds the leader lease', (s) =>
    s.bus?.leads === undefined ? undefined : Number(s.bus.leads),
  ),
];

export class TowerMetrics extends PromMetrics<TowerSnapshot> {
  private readonly latency = new Histogram({
    name: 'tacmesh_tower_query_seconds',
    help: 'API request latency',
    labelNames: ['route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  constructor(snapshot: () => TowerSnapshot) {
    super('tacmesh_tower_', {}, TOWER_METRICS, snapshot);
  }

  /** One API request answered (routes that exist only: a 404 adds no label value). */
  request(path: string, status: number, ms: number): void {
    if (status === 404) return;
    const route = path.split('/')[3] || 'root';
    this.latency.observe({ route }, ms / 1000);
  }
}
