/**
 * What GET /api/v1/live pushes: the types the tower's feed (live.ts) writes and the
 * dashboard (web/src/live.ts) reads. Types only, so the page's build imports nothing else.
 */
import type { Locality } from '../model.js';

export interface LiveRequest {
  time: number;
  node: string;
  method: string;
  url: string;
  host: string;
  src: string;
  dst: string;
  dstPort: number;
  locality: Locality;
  /** The response's code when it came in the same batch, else null (the query API joins it later). */
  status: number | null;
}

export interface LiveTotals {
  records: number;
  bytes: number;
  packets: number;
}

/** One push: what arrived since the previous one. */
export interface LiveUpdate {
  /** Server time of this push, ms since the epoch. */
  t: number;
  /** The span this update covers: from the previous push to t. */
  sinceMs: number;
  flows: LiveTotals & { byLocality: Record<Locality, LiveTotals & { conversations: number }> };
  /** Egress bytes per node (what the throughput chart plots). */
  nodes: Record<string, { bytes: number; records: number }>;
  http: { requests: number; responses: number; errors: number; byStatus: Record<string, number> };
  /** The newest requests, newest last, at most RECENT_MAX. */
  recent: LiveRequest[];
  /** Requests left out of `recent` because more came than fit. */
  recentDropped: number;
}
