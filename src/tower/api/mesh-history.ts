/**
 * The mesh over time, from the stored reports: one radio link's time series (both ends'
 * reports in buckets, GET /api/v1/mesh/links/{a}/{b}) and the mesh's events — a link end's
 * state changing, a node's next hop towards other nodes' prefixes changing, a node reached
 * through a relay (GET /api/v1/mesh/events).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { parseCidr } from '../ingest/prefix.js';
import type { LinkEvent, LinkPoint, LinkSeries, LinkStateName, MeshEvent, RouteEvent } from './mesh-types.js';

/** A state change needs the report before it: looked for this far before the window. */
const LOOKBACK_MS = 60_000;
const STATES: LinkStateName[] = ['up', 'degraded', 'down'];

export type NodeOf = (address: string) => string | null;

interface End {
  node: string;
  iface: string;
  address: string;
  neighbour: string;
}

/** The ends of the link between a and b seen in the window (the newest of each); none: no such link. */
async function linkEnds(
  db: DuckDBConnection,
  a: string,
  b: string,
  w: { fromMs: number; toMs: number },
  nodeOf: NodeOf,
): Promise<{ a?: End; b?: End }> {
  const r = await db.runAndReadAll(
    `SELECT node, iface, address, neighbour FROM mesh_links
     WHERE node IN ($1, $2) AND time_ms BETWEEN $3 AND $4
     QUALIFY row_number() OVER (PARTITION BY node, iface ORDER BY time_ms DESC, seq DESC) = 1`,
    [a, b, w.fromMs, w.toMs],
  );
  const ends = r.getRowObjectsJS().map((row) => ({
    node: String(row.node),
    iface: String(row.iface),
    address: String(row.address),
    neighbour: String(row.neighbour),
  }));
  const mine = (node: string, peer: string) => {
    const peerAddresses = new Set(ends.filter((e) => e.node === peer).map((e) => e.address));
    return ends.find(
      (e) => e.node === node && (peerAddresses.has(e.neighbour) || nodeOf(e.neighbour) === peer),
    );
  };
  const ea = mine(a, b);
  const eb = mine(b, a);
  return { ...(ea ? { a: ea } : {}), ...(eb ? { b: eb } : {}) };
}

/** The link's time series in buckets of stepMs; undefined when no report in the window is of a link between a and b. */
export async function linkSeries(
  db: DuckDBConnection,
  a: string,
  b: string,
  w: { fromMs: number; toMs: number },
  stepMs: number,
  nodeOf: NodeOf,
): Promise<LinkSeries | undefined> {
  const ends = await linkEnds(db, a, b, w, nodeOf);
  if (!ends.a && !ends.b) return undefined;
  const step = Math.max(1000, Math.round(stepMs));
  const r = await db.runAndReadAll(
    `SELECT node, ((time_ms // ${step}) * ${step})::DOUBLE AS t,
            avg(rtt_mean_ms) AS rtt, avg(jitter_ms) AS jitter,
            avg(loss_forward_pct) AS lout, avg(loss_backward_pct) AS lin,
            avg(load_tx_bps::DOUBLE) AS tx, avg(load_rx_bps::DOUBLE) AS rx, min(capacity_bps)::DOUBLE AS cap,
            max(CASE state WHEN 'down' THEN 2 WHEN 'degraded' THEN 1 ELSE 0 END) AS worst
     FROM mesh_links
     WHERE time_ms BETWEEN $1 AND $2 AND ((node = $3 AND iface = $4) OR (node = $5 AND iface = $6))
     GROUP BY node, t ORDER BY t`,
    [w.fromMs, w.toMs, a, ends.a?.iface ?? '', b, ends.b?.iface ?? ''],
  );
  type Bucket = {
    rtt: number | null;
    jitter: number | null;
    lout: number;
    lin: number;
    tx: number;
    rx: number;
    cap: number;
    worst: number;
  };
  const byT = new Map<number, { a?: Bucket; b?: Bucket }>();
  const num = (v: unknown) => (v === null ? null : Number(v));
  for (const row of r.getRowObjectsJS()) {
    const t = Number(row.t);
    const at = byT.get(t) ?? {};
    const bucket: Bucket = {
      rtt: num(row.rtt),
      jitter: num(row.jitter),
      lout: Number(row.lout),
      lin: Number(row.lin),
      tx: Number(row.tx),
      rx: Number(row.rx),
      cap: Number(row.cap),
      worst: Number(row.worst),
    };
    if (String(row.node) === a) at.a = bucket;
    else at.b = bucket;
    byT.set(t, at);
  }
  const mean = (xs: (number | null | undefined)[]) => {
    const v = xs.filter((x): x is number => x !== null && x !== undefined);
    return v.length ? v.reduce((s, x) => s + x, 0) / v.length : null;
  };
  const worse = (x: number | undefined, y: number | undefined) =>
    x === undefined ? (y ?? null) : y === undefined ? x : Math.max(x, y);
  const points: LinkPoint[] = [...byT].map(([t, { a: x, b: y }]) => ({
    t,
    state: STATES[Math.max(x?.worst ?? 0, y?.worst ?? 0)] ?? 'up',
    rttMs: mean([x?.rtt, y?.rtt]),
    jitterMs: mean([x?.jitter, y?.jitter]),
    // Each way, the worse of the two ends' counts (as in GET /mesh).
    lossPct: { ab: worse(x?.lout, y?.lin), ba: worse(x?.lin, y?.lout) },
    loadBps: { ab: x?.tx ?? y?.rx ?? null, ba: y?.tx ?? x?.rx ?? null },
    capacityBps: x && y ? Math.min(x.cap, y.cap) : (x?.cap ?? y?.cap ?? null),
  }));
  return { a, b, stepMs: step, points };
}

/** The node an address or a prefix's network address belongs to. */
const ownerOf = (prefix: string, nodeOf: NodeOf): string | null => {
  try {
    const c = parseCidr(prefix);
    if (c.bits === 0) return null;
    return nodeOf(c.kind === 'ipv4' ? c.bytes.join('.') : (prefix.split('/')[0] ?? ''));
  } catch {
    return null;
  }
};

/** The mesh's events in the window, newest first, at most `limit`. */
export async function meshEvents(
  db: DuckDBConnection,
  w: { fromMs: number; toMs: number },
  limit: number,
  nodeOf: NodeOf,
): Promise<MeshEvent[]> {
  const links = await db.runAndReadAll(
    `SELECT * FROM (
       SELECT time_ms::DOUBLE AS t, node, neighbour, state, why,
              lag(state) OVER (PARTITION BY node, iface ORDER BY time_ms, seq) AS prev
       FROM mesh_links WHERE time_ms BETWEEN $1 AND $2)
     WHERE prev IS NOT NULL AND prev <> state AND t >= $3 ORDER BY t DESC LIMIT $4`,
    [w.fromMs - LOOKBACK_MS, w.toMs, w.fromMs, limit],
  );
  const events: MeshEvent[] = links.getRowObjectsJS().map(
    (row): LinkEvent => ({
      kind: `link-${String(row.state)}` as LinkEvent['kind'],
      timeMs: Number(row.t),
      node: String(row.node),
      peer: nodeOf(String(row.neighbour)) ?? String(row.neighbour),
      why: JSON.parse(String(row.why)) as string[],
    }),
  );
  const routes = await db.runAndReadAll(
    `SELECT * FROM (
       SELECT time_ms::DOUBLE AS t, node, seq, prefix, via,
              lag(via) OVER (PARTITION BY node, prefix ORDER BY seq) AS prev
       FROM mesh_routes WHERE time_ms BETWEEN $1 AND $2)
     WHERE prev IS NOT NULL AND prev <> via AND t >= $3 ORDER BY t DESC, node, prefix LIMIT $4`,
    [w.fromMs - LOOKBACK_MS, w.toMs, w.fromMs, limit],
  );
  const hop = (via: string) => (via === '' ? null : (nodeOf(via) ?? via));
  // The prefixes of one node changing together towards one destination node are one event.
  const changes = new Map<string, { event: RouteEvent; relay: boolean }>();
  for (const row of routes.getRowObjectsJS()) {
    const prefix = String(row.prefix);
    const via = String(row.via);
    const to = ownerOf(prefix, nodeOf);
    const event: RouteEvent = {
      kind: 'route-changed',
      timeMs: Number(row.t),
      node: String(row.node),
      to,
      prefixes: [prefix],
      before: hop(String(row.prev)),
      after: hop(via),
    };
    const key = [event.node, String(row.seq), to, event.before, event.after].join('|');
    const had = changes.get(key);
    if (had) had.event.prefixes.push(prefix);
    else {
      // Reached through a relay: the new next hop is a node, and not the destination itself.
      const next = via === '' ? null : nodeOf(via);
      changes.set(key, { event, relay: to !== null && next !== null && next !== to });
    }
  }
  for (const { event, relay } of changes.values()) {
    events.push(event);
    if (relay) events.push({ ...event, kind: 'relayed' });
  }
  return events.sort((x, y) => y.timeMs - x.timeMs).slice(0, limit);
}
