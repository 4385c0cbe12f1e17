/**
 * What GET /api/v1/mesh answers: the radio links as their two ends measured them. Types
 * only, shared by the tower (mesh.ts) and the dashboard. Rates in bit/s.
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

export interface MeshView {
  nodes: { name: string; connected: boolean; position: { lat: number; lon: number } | null }[];
  links: MeshLink[];
}
