/**
 * A radio link's state from what the node measured: down when the radio says the neighbour
 * is gone (DLEP Destination Down, or its session lost) or the probes go unanswered; degraded
 * when loss, round-trip time or capacity pass the configured marks; up otherwise.
 */
import type { MeshConfig } from './config.js';
import type { ProbeStats } from './stamp/sender.js';

export type LinkState = 'up' | 'degraded' | 'down';

export interface LinkEvidence {
  probe: ProbeStats;
  /** undefined: no DLEP on this link; false: the radio reports no such neighbour. */
  radioReportsNeighbour?: boolean;
  capacityBps: number;
  maxCapacityBps: number;
}

/** The state and, when not up, why. */
export function linkState(
  e: LinkEvidence,
  marks: MeshConfig['degraded'],
): { state: LinkState; why: string[] } {
  if (e.radioReportsNeighbour === false)
    return { state: 'down', why: ['the radio reports the neighbour gone'] };
  if (e.probe.down) return { state: 'down', why: ['no probe answered'] };
  const why: string[] = [];
  const loss = e.probe.lossForwardPct + e.probe.lossBackwardPct;
  if (loss > marks.lossPct) why.push(`loss ${loss.toFixed(1)} % > ${marks.lossPct} %`);
  if (e.probe.rttMs && e.probe.rttMs.p95 > marks.rttMs)
    why.push(`RTT p95 ${e.probe.rttMs.p95.toFixed(0)} ms > ${marks.rttMs} ms`);
  if (e.maxCapacityBps > 0 && e.capacityBps < marks.capacityShare * e.maxCapacityBps)
    why.push(`capacity ${(e.capacityBps / 1e6).toFixed(1)} of ${(e.maxCapacityBps / 1e6).toFixed(1)} Mbit/s`);
  return { state: why.length ? 'degraded' : 'up', why };
}
