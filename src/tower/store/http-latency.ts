/**
 * The roll-up of HTTP lines into latency histograms (table http_latency). Each node's lines
 * are paired on their own — a request with the first response after it on the same
 * connection, seen by the same node — so a latency is two readings of one clock: at the
 * server's node it is the server's time, at the client's node the time the client sees.
 */
import { bucketSql } from '../services/histogram.js';

export const LATENCY_PERIOD_MS = 10_000;
/** A response later than this after its request counts as none (status class 0). */
export const RESPONSE_WAIT_MS = 5_000;
/** How late a node's batch may arrive and still be in its period's roll-up. */
export const BATCH_LATENESS_MS = 5_000;

/** INSERTs the periods of requests in [$1, $2) into http_latency. */
export const ROLL_UP_LATENCY = `
INSERT INTO http_latency
WITH req AS (
  SELECT node, time_ms, src, src_port, dst, dst_port FROM http
  WHERE NOT response AND time_ms >= $1 AND time_ms < $2
  QUALIFY row_number() OVER (PARTITION BY node, src, src_port, dst, dst_port, method, url, time_ms // 100 ORDER BY time_ms) = 1),
res AS (
  SELECT node, time_ms, src, src_port, dst, dst_port, status FROM http
  WHERE response AND time_ms >= $1 AND time_ms < $2 + ${RESPONSE_WAIT_MS}
  QUALIFY row_number() OVER (PARTITION BY node, src, src_port, dst, dst_port, status, time_ms // 100 ORDER BY time_ms) = 1),
p AS (
  SELECT q.time_ms, q.node, q.src AS client, q.dst AS server, q.dst_port AS server_port,
         CASE WHEN r.time_ms - q.time_ms <= ${RESPONSE_WAIT_MS} THEN r.status // 100 ELSE 0 END AS status_class,
         CASE WHEN r.time_ms - q.time_ms <= ${RESPONSE_WAIT_MS} THEN r.time_ms - q.time_ms END AS ms
  FROM req q ASOF LEFT JOIN res r
    ON r.node = q.node AND r.src = q.dst AND r.dst = q.src
   AND r.src_port = q.dst_port AND r.dst_port = q.src_port AND r.time_ms >= q.time_ms)
SELECT (time_ms // ${LATENCY_PERIOD_MS}) * ${LATENCY_PERIOD_MS}, node, client, server, server_port,
       status_class, CASE WHEN ms IS NULL THEN 0 ELSE ${bucketSql('ms')} END, count(*)
FROM p GROUP BY ALL`;
