/**
 * The paths of GET /api/v1/mesh: from each node to each slice of every other node, hop by
 * hop along the next hops of the newest route report of each node (the last 30 s). A walk
 * ends at the destination, or says why not: no route, a loop, a next hop that is no node,
 * a node that reports no routes.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { contains, parseCidr } from '../ingest/prefix.js';
import type { RouteReportRow } from '../model.js';
import type { MeshPath } from './mesh-types.js';

const FRESH_MS = 30_000;

export type NodeRoutes = Pick<RouteReportRow, 'node' | 'source' | 'routes'>;

/** The newest route report of each node. */
export async function newestRoutes(
  db: DuckDBConnection,
  nowMs = Date.now(),
): Promise<Map<string, NodeRoutes>> {
  const r = await db.runAndReadAll(
    `WITH newest AS (SELECT node, max(seq) AS seq FROM mesh_routes WHERE time_ms >= $1 GROUP BY node)
     SELECT r.node, r.source, r.prefix, r.via, r.iface, r.metric::DOUBLE AS metric, r.since_ms::DOUBLE AS since
     FROM mesh_routes r JOIN newest USING (node, seq) ORDER BY r.node, r.prefix`,
    [nowMs - FRESH_MS],
  );
  const out = new Map<string, NodeRoutes>();
  for (const row of r.getRowObjectsJS()) {
    const node = String(row.node);
    const t = out.get(node) ?? {
      node,
      source: String(row.source) === 'babel' ? 'babel' : 'kernel',
      routes: [],
    };
    out.set(node, t);
    t.routes.push({
      prefix: String(row.prefix),
      via: String(row.via),
      iface: String(row.iface),
      metric: Number(row.metric),
      sinceMs: Number(row.since),
    });
  }
  return out;
}

type Route = NodeRoutes['routes'][number];

/** The most specific route whose destination holds all of `prefix`. */
function lookup(
  routes: { route: Route; cidr: ReturnType<typeof parseCidr> }[],
  prefix: string,
): Route | undefined {
  const want = parseCidr(prefix);
  let best: { route: Route; bits: number } | undefined;
  for (const { route, cidr } of routes)
    if (contains(cidr, want) && (!best || cidr.bits > best.bits)) best = { route, bits: cidr.bits };
  return best?.route;
}

type ParsedTables = Map<string, { route: Route; cidr: ReturnType<typeof parseCidr> }[]>;

/** The route tables with their prefixes parsed once (a prefix that does not parse is left out). */
export function parseTables(tables: Map<string, Pick<NodeRoutes, 'routes'>>): ParsedTables {
  return new Map(
    [...tables].map(([node, t]) => [
      node,
      t.routes.flatMap((route) => {
        try {
          return [{ route, cidr: parseCidr(route.prefix) }];
        } catch {
          return [];
        }
      }),
    ]),
  );
}

/** Every node's path to every prefix of every other node (pure: tested without a store). */
export function meshPaths(
  nodes: { name: string; prefixes: string[] }[],
  tables: Map<string, Pick<NodeRoutes, 'routes'>>,
  nodeOf: (address: string) => string | null,
): MeshPath[] {
  const parsed = parseTables(tables);
  const paths: MeshPath[] = [];
  for (const from of nodes) {
    if (!tables.has(from.name)) continue;
    for (const to of nodes) {
      if (to.name === from.name) continue;
      for (const prefix of to.prefixes) {
        const { egress: _, ...path } = tracePath(from.name, to.name, prefix, parsed, nodeOf);
        paths.push(path);
      }
    }
  }
  return paths;
}

/** A path with the interface each hop but the last sends it out of (its route's). */
export type TracedPath = MeshPath & { egress: string[] };

/** The walk from `from` to `to`'s `prefix` along each node's route to it. */
export function tracePath(
  from: string,
  to: string,
  prefix: string,
  tables: ParsedTables,
  nodeOf: (address: string) => string | null,
): TracedPath {
  const hops = [from];
  const egress: string[] = [];
  let since: number | null = null;
  const end = (status: MeshPath['status'], via?: string): TracedPath => ({
    from,
    to,
    prefix,
    hops,
    status,
    ...(via ? { via } : {}),
    since,
    egress,
  });
  for (let at = from; ; ) {
    if (at === to) return end('ok');
    const routes = tables.get(at);
    if (!routes) return end('unreported');
    const route = lookup(routes, prefix);
    // A node's own prefix that is not the destination: the traffic stops (or leaves the mesh) there.
    if (!route || route.via === '') return end('no-route');
    since = Math.max(since ?? 0, route.sinceMs);
    const next = nodeOf(route.via);
    if (!next) return end('unknown-hop', route.via);
    const seen = hops.includes(next);
    hops.push(next);
    egress.push(route.iface);
    if (seen) return end('loop');
    at = next;
  }
}
