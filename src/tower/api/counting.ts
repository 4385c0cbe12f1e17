/**
 * The dashboard's counting rules, for both the windowed queries (queries.ts, in SQL over the
 * store) and the live feed (live.ts, over each stored batch), so the two count the same
 * traffic the same way. Each rule is written twice, as SQL and as a predicate, side by side
 * here; counting.test.ts runs both on the same rows.
 *
 * - Traffic that never leaves its link — IPv6 link-local and unspecified sources, multicast
 *   and broadcast destinations (neighbour discovery, MLD, the routing daemon's hellos) — is
 *   kept in the store but is no conversation between places: it is not counted.
 * - The filters: a node, an interface, an address at either end, a locality.
 * - Bytes and packets count at egress only: a packet crossing a node counts once there.
 * - A conversation is a distinct 5-tuple: a flow seen on several interfaces counts once.
 * - An HTTP line seen on several ports or by several nodes (and any relay) is one line: the
 *   copies agree on the connection, the request line (or the status) and the time to 100 ms.
 */
import type { DuckDBValue } from '@duckdb/node-api';
import type { HttpRow, Locality } from '../model.js';

export interface Filter {
  node?: string | undefined;
  iface?: string | undefined;
  /** Only traffic with this address at either end. */
  ip?: string | undefined;
  /** Only traffic of this locality (a pie slice clicked on the dashboard). */
  locality?: Locality | undefined;
}

interface Ends {
  node: string;
  iface: string;
  src: string;
  dst: string;
  locality: Locality;
}

const ROUTABLE_SQL = `NOT (src LIKE 'fe80:%' OR src = '::' OR dst LIKE 'fe80:%' OR dst LIKE 'ff%:%'
  OR dst = '255.255.255.255' OR regexp_matches(dst, '^2(2[4-9]|3[0-9])\\.'))`;
const MULTICAST_V4 = /^2(2[4-9]|3[0-9])\./;

export function routable(r: { src: string; dst: string }): boolean {
  return !(
    r.src.startsWith('fe80:') ||
    r.src === '::' ||
    r.dst.startsWith('fe80:') ||
    /^ff.*:/.test(r.dst) ||
    r.dst === '255.255.255.255' ||
    MULTICAST_V4.test(r.dst)
  );
}

/**
 * The routable rule and the filter as SQL conditions, their values appended to `params`.
 * `locality: false` leaves the locality out (the pies show every locality at once).
 */
export function filterSql(f: Filter, params: DuckDBValue[], opts: { locality?: boolean } = {}): string[] {
  const clauses = [ROUTABLE_SQL];
  const add = (value: string, sql: (p: string) => string) => {
    params.push(value);
    clauses.push(sql(`$${params.length}`));
  };
  if (f.node) add(f.node, (p) => `node = ${p}`);
  if (f.iface) add(f.iface, (p) => `iface = ${p}`);
  if (f.ip) add(f.ip, (p) => `(src = ${p} OR dst = ${p})`);
  if (f.locality && opts.locality !== false) add(f.locality, (p) => `locality = ${p}`);
  return clauses;
}

/** The routable rule and the filter on one row, as filterSql has them. */
export function counted(f: Filter, r: Ends): boolean {
  if (!routable(r)) return false;
  if (f.node && r.node !== f.node) return false;
  if (f.iface && r.iface !== f.iface) return false;
  if (f.ip && r.src !== f.ip && r.dst !== f.ip) return false;
  if (f.locality && r.locality !== f.locality) return false;
  return true;
}

/** Where bytes and packets are counted. */
export const VOLUME_SQL = `direction = 'egress'`;
export const countsVolume = (r: { direction: 'ingress' | 'egress' }) => r.direction === 'egress';

/** What makes a conversation: these columns. */
export const CONVERSATION_SQL = 'src, dst, src_port, dst_port, protocol';
export const conversationKey = (r: {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  protocol: number;
}) => `${r.protocol} ${r.src} ${r.srcPort} ${r.dst} ${r.dstPort}`;

/** What makes one HTTP line, its copies on other ports and nodes aside. */
export const httpLineSql = (response: boolean) =>
  `src, src_port, dst, dst_port, ${response ? 'status' : 'method, url'}, time_ms // 100`;
export const httpLineKey = (r: HttpRow) =>
  `${r.src} ${r.srcPort} ${r.dst} ${r.dstPort} ${r.response ? `status ${r.status}` : `${r.method} ${r.url}`} ${Math.floor(r.timeMs / 100)}`;
