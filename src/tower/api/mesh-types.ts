/**
 * What the mesh API answers (docs/mesh.md): GET /api/v1/mesh (the radio links as their two
 * ends measured them, and the paths the nodes' next hops make), GET /api/v1/mesh/links/{a}/{b}
 * (a link's time series) and GET /api/v1/mesh/events. Types only, shared by the tower
 * (mesh.ts, mesh-paths.ts, mesh-history.ts) and the dashboard. Rates in bit/s.
 */

export type LinkStateName = 'up' | 'degraded' | 'down';

/** One end's view of a radio link. */
export interface MeshLinkEnd {
  node: string;
  iface: string;
  address: string;
  state: LinkStateName;
  why: string[];
  /** The probes the window's statistics count (answered or timed out). */
  probesSent: number;
  rttMeanMs: number | null;
  rttMedianMs: number | null;
  rttP95Ms: number | null;
  jitterMs: number | null;
  /** Lost on the way from this end to the other, and back. */
  lossOutPct: number;
  lossInPct: number;
  capacityBps: number;
  maxCapacityBps: number;
  capacityFrom: 'dlep' | 'config';
  loadTxBps: number;
  loadRxBps: number;
  timeMs: number;
  sinceMs: number;
}

export interface MeshLink {
  /** The two nodes; `b` is the neighbour's address while that end does not report. */
  a: string;
  b: string;
  /** The worse of the two ends' states. */
  state: LinkStateName;
  rttMs: number | null;
  jitterMs: number | null;
  /** Loss each way, from a to b and from b to a (the worse of the two ends' counts). */
  lossPct: { ab: number; ba: number };
  capacityBps: number;
  loadBps: { ab: number; ba: number };
  utilization: number;
  since: number;
  lastSeen: number;
  ends: MeshLinkEnd[];
}

/**
 * Where a walk along the next hops ended: at the destination (ok), at a node with no route
 * for it (no-route; its own default route counts, the traffic leaves the mesh there), back at
 * a node already on the path (loop), at a next hop that is no known node (unknown-hop), or at
 * a node that reports no routes (unreported).
 */
export type PathStatus = 'ok' | 'no-route' | 'loop' | 'unknown-hop' | 'unreported';

/** The path from one node to a prefix (a slice) of another, hop by hop, as the nodes' routes say now. */
export interface MeshPath {
  from: string;
  to: string;
  prefix: string;
  /** The nodes on the way, `from` first; `to` last when the status is ok. */
  hops: string[];
  status: PathStatus;
  /** The next hop's address where it is no known node (unknown-hop). */
  via?: string;
  /** Since when every hop has had its next hop (ms): the path has been this one since then. */
  since: number | null;
}

export interface MeshView {
  nodes: {
    name: string;
    connected: boolean;
    position: { lat: number; lon: number } | null;
    /** Where the node's newest route report came from (null: none in the last 30 s). */
    routes: 'babel' | 'kernel' | null;
  }[];
  links: MeshLink[];
  paths: MeshPath[];
}

/** One bucket of a link's time series: both ends' reports, averaged (the state: the worst). */
export interface LinkPoint {
  t: number;
  state: LinkStateName;
  rttMs: number | null;
  jitterMs: number | null;
  lossPct: { ab: number | null; ba: number | null };
  loadBps: { ab: number | null; ba: number | null };
  capacityBps: number | null;
}

export interface LinkSeries {
  a: string;
  b: string;
  stepMs: number;
  points: LinkPoint[];
}

/**
 * What changed in the mesh, derived at the tower from the reports: a link end's state, a
 * node's next hop towards another node's prefixes, and a node reached through a relay.
 */
export interface LinkEvent {
  kind: 'link-down' | 'link-up' | 'link-degraded';
  timeMs: number;
  /** The end that reported it, and the node (or address) at the other end. */
  node: string;
  peer: string;
  why: string[];
}

export interface RouteEvent {
  kind: 'route-changed' | 'relayed';
  timeMs: number;
  node: string;
  /** The node the prefixes belong to (null: none, e.g. the default route). */
  to: string | null;
  prefixes: string[];
  /** The next hop before and after (node names, or addresses no node has); null: none. */
  before: string | null;
  after: string | null;
}

export type MeshEvent = LinkEvent | RouteEvent;

export interface MeshEvents {
  events: MeshEvent[];
}
