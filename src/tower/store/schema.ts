/** The tower's tables in DuckDB. Times are BIGINT milliseconds since the epoch. */
export const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS flows (
    time_ms BIGINT, node VARCHAR, seq UBIGINT, iface VARCHAR, direction VARCHAR, ip_version UTINYINT,
    src VARCHAR, dst VARCHAR, src_port USMALLINT, dst_port USMALLINT, protocol UTINYINT,
    packets UBIGINT, bytes UBIGINT, tcp_flags UTINYINT, dscp UTINYINT, first_seen_ms BIGINT,
    locality VARCHAR, src_node VARCHAR, dst_node VARCHAR)`,
  `CREATE TABLE IF NOT EXISTS http (
    time_ms BIGINT, node VARCHAR, seq UBIGINT, iface VARCHAR, direction VARCHAR, ip_version UTINYINT,
    src VARCHAR, dst VARCHAR, src_port USMALLINT, dst_port USMALLINT, response BOOLEAN,
    method VARCHAR, url VARCHAR, host VARCHAR, status USMALLINT, version VARCHAR, truncated BOOLEAN,
    locality VARCHAR)`,
  `CREATE TABLE IF NOT EXISTS monitor_stats (
    time_ms BIGINT, node VARCHAR, seq UBIGINT, active_flows UBIGINT, packets_seen UBIGINT, bytes_seen UBIGINT,
    flow_map_full UBIGINT, http_events UBIGINT, events_dropped UBIGINT, malformed UBIGINT, records_lost UBIGINT)`,
  // The nodes' radio links as they measured them (docs/mesh.md); RTTs NULL when unanswered.
  `CREATE TABLE IF NOT EXISTS mesh_links (
    time_ms BIGINT, node VARCHAR, seq UBIGINT, iface VARCHAR, address VARCHAR, neighbour VARCHAR, state VARCHAR, why VARCHAR,
    since_ms BIGINT, probes_sent UINTEGER, probes_answered UINTEGER, rtt_min_ms DOUBLE, rtt_mean_ms DOUBLE,
    rtt_p95_ms DOUBLE, jitter_ms DOUBLE, loss_forward_pct DOUBLE, loss_backward_pct DOUBLE,
    capacity_bps UBIGINT, max_capacity_bps UBIGINT, capacity_from VARCHAR, load_tx_bps UBIGINT,
    load_rx_bps UBIGINT, utilization DOUBLE)`,
  // One-minute roll-ups of flows, kept longer than the raw rows.
  `CREATE TABLE IF NOT EXISTS flows_1m (
    minute_ms BIGINT, node VARCHAR, src VARCHAR, dst VARCHAR, protocol UTINYINT, locality VARCHAR,
    src_node VARCHAR, dst_node VARCHAR, packets UBIGINT, bytes UBIGINT, records UBIGINT)`,
  `CREATE TABLE IF NOT EXISTS nodes (
    name VARCHAR PRIMARY KEY, subnets VARCHAR, slices VARCHAR, lat DOUBLE, lon DOUBLE, software VARCHAR,
    first_seen_ms BIGINT, last_seen_ms BIGINT, status VARCHAR, monitor VARCHAR)`,
  `CREATE TABLE IF NOT EXISTS agent_events (
    time_ms BIGINT, node VARCHAR, entity VARCHAR, problem VARCHAR, action VARCHAR, ok BOOLEAN,
    cause VARCHAR, error VARCHAR, took_ms UINTEGER)`,
  // Request → response latency of each client/server pair as each node saw it, per 10 s period:
  // a row per status class (status // 100; 0: no response) and log bucket (docs/services.md).
  `CREATE TABLE IF NOT EXISTS http_latency (
    period_ms BIGINT, node VARCHAR, client VARCHAR, server VARCHAR, server_port USMALLINT,
    status_class UTINYINT, bucket UTINYINT, n UBIGINT)`,
  `CREATE TABLE IF NOT EXISTS rollup_state (name VARCHAR PRIMARY KEY, done_ms BIGINT)`,
  // Every change of the QoS policy (an operator's, a refused one, the closed loop's): who, when, what.
  `CREATE TABLE IF NOT EXISTS qos_audit (
    time_ms BIGINT, who VARCHAR, action VARCHAR, version UBIGINT, summary VARCHAR, policy VARCHAR)`,
];
