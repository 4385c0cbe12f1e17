/**
 * Prometheus metrics for both sides (prom-client), served at GET /metrics on
 * `metrics.listen`. Every value is read from the same counters the stats file shows, once
 * per scrape. Names (all prefixed `tacmesh_diode_`, label `role` = sender | receiver):
 *
 *   frames_total               frames sent (sender) / accepted (receiver)
 *   copies_total               extra copies sent
 *   repairs_total              FEC repair frames sent / received
 *   duplicates_total           copies dropped by the receiver's window
 *   lost_frames_total          frames lost in every copy and not recovered (gaps)
 *   auth_failures_total        frames refused by the tag check, label reason
 *   fec_blocks_total           blocks by outcome (intact, repaired, failed)
 *   fec_recovered_frames_total frames rebuilt from repairs
 *   fec_min_spare              the smallest spare of any block (symbols beyond K)
 *   sessions_total             TCP sessions by state
 *   files_total                files by state (accepted, sent; delivered, quarantined)
 *   spool_bytes                bytes in the spool
 *   link_up                    1 while heartbeats arrive (receiver)
 *   link_loss_ratio            datagram loss from the sender's counts (receiver)
 *   sender_counter             the sender's counters as its heartbeats report them, label name
 */
import { type MetricDef, PromMetrics } from '../shared/metrics.js';

export { byLabel, type MetricDef, one, type Sample } from '../shared/metrics.js';

export class Metrics<S> extends PromMetrics<S> {
  constructor(role: 'sender' | 'receiver', defs: MetricDef<S>[], snapshot: () => S) {
    super('tacmesh_diode_', { role }, defs, snapshot);
  }
}
