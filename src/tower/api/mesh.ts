/**
 * GET /api/v1/mesh: every radio link from the newest report of each end (the last 30 s),
 * the two ends paired by their addresses — a's neighbour is b's address and the other way
 * round — so the tower shows one link with what each end saw.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { LinkStateName, MeshLink, MeshLinkEnd } from './mesh-types.js';

const FRESH_MS = 30_000;
const WORSE: Record<LinkStateName, number> = { up: 0, degraded: 1, down: 2 };

interface EndRow extends MeshLinkEnd {
  neighbour: string;
}

export async function meshEnds(db: DuckDBConnection, nowMs = Date.now()): Promise<EndRow[]> {
  const r = await db.runAndReadAll(
    `SELECT node, iface, address, neighbour, state, why, probes_sent, rtt_mean_ms, rtt_median_ms, rtt_p95_ms, jitter_ms,
            loss_forward_pct, loss_backward_pct, capacity_bps::DOUBLE AS cap, max_capacity_bps::DOUBLE AS maxcap,
            capacity_from, load_tx_bps::DOUBLE AS tx, load_rx_bps::DOUBLE AS rx, time_ms::DOUBLE AS t, since_ms::DOUBLE AS since
     FROM mesh_links WHERE time_ms >= $1
     QUALIFY row_number() OVER (PARTITION BY node, iface ORDER BY time_ms DESC, seq DESC) = 1`,
    [nowMs - FRESH_MS],
  );
  const num = (v: unknown) => (v === null ? null : Number(v));
  return r.getRowObjectsJS().map((row) => ({
    node: String(row.node),
    iface: String(row.iface),
    address: String(row.address),
    neighbour: String(row.neighbour),
    state: String(row.state) as LinkStateName,
    why: JSON.parse(String(row.why)) as string[],
    probesSent: Number(row.probes_sent),
    rttMeanMs: num(row.rtt_mean_ms),
    rttMedianMs: num(row.rtt_median_ms),
    rttP95Ms: num(row.rtt_p95_ms),
    jitterMs: num(row.jitter_ms),
    lossOutPct: Number(row.loss_forward_pct),
    lossInPct: Number(row.loss_backward_pct),
    capacityBps: Number(row.cap),
    maxCapacityBps: Number(row.maxcap),
    capacityFrom: String(row.capacity_from) === 'dlep' ? 'dlep' : 'config',
    loadTxBps: Number(row.tx),
    loadRxBps: Number(row.rx),
    timeMs: Number(row.t),
    sinceMs: Number(row.since),
  }));
}

/** Pairs the ends into links (pure: tested without a store). */
export function pairLinks(ends: EndRow[]): MeshLink[] {
  const byAddress = new Map(ends.map((e) => [e.address, e]));
  const done = new Set<EndRow>();
  const links: MeshLink[] = [];
  for (const e of [...ends].sort((x, y) => x.node.localeCompare(y.node) || x.iface.localeCompare(y.iface))) {
    if (done.has(e)) continue;
    done.add(e);
    const peer = byAddress.get(e.neighbour);
    const other = peer && peer.neighbour === e.address && !done.has(peer) ? peer : undefined;
    if (other) done.add(other);
    const both = other ? [e, other] : [e];
    const state = both.reduce<LinkStateName>((s, x) => (WORSE[x.state] > WORSE[s] ? x.state : s), 'up');
    const rtts = both.map((x) => x.rttMeanMs).filter((x): x is number => x !== null);
    const jitters = both.map((x) => x.jitterMs).filter((x): x is number => x !== null);
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
    const ab = Math.max(e.lossOutPct, other?.lossInPct ?? 0);
    const ba = Math.max(e.lossInPct, other?.lossOutPct ?? 0);
    const capacityBps = Math.min(...both.map((x) => x.capacityBps));
    const loadBps = { ab: e.loadTxBps, ba: other ? other.loadTxBps : e.loadRxBps };
    links.push({
      a: e.node,
      b: other?.node ?? e.neighbour,
      state,
      rttMs: mean(rtts),
      jitterMs: mean(jitters),
      lossPct: { ab, ba },
      capacityBps,
      loadBps,
      utilization: capacityBps > 0 ? Math.max(loadBps.ab, loadBps.ba) / capacityBps : 0,
      since: Math.max(...both.map((x) => x.sinceMs)),
      lastSeen: Math.max(...both.map((x) => x.timeMs)),
      ends: both.map(({ neighbour: _, ...end }) => end),
    });
  }
  return links;
}
