/**
 * `tacmesh tower bus`: the bus's health at a running tower (its /health `bus`), in lines an
 * operator reads — connected and to which server, the stream, how far behind the writer
 * is, the copies of a replicated stream, the lease and who leads.
 */

import type { BusHealth } from './connection.js';
import type { PublishCounters } from './publisher.js';
import type { WriterCounters } from './writer.js';

/** /api/v1/health's `bus` (null without a `bus:` section). */
export type BusHealthView = BusHealth &
  PublishCounters & {
    writer: WriterCounters;
    audit: { stream: string; kept: number; refused: number };
    lease: { holder: string; leader: string | null; leaderAddress: string | null; leads: boolean } | null;
  };

/** The report, and whether the bus is healthy (connected, read within `staleMs`). */
export function busReport(
  bus: BusHealthView | null,
  nowMs: number,
  staleMs = 10_000,
): { lines: string[]; ok: boolean } {
  if (!bus)
    return {
      lines: ['no bus: this tower stores what its control plane receives (no bus: section)'],
      ok: true,
    };
  const age = bus.checkedMs ? nowMs - bus.checkedMs : Number.POSITIVE_INFINITY;
  const lines = [
    `bus        ${bus.connected ? `connected to ${bus.server}` : 'NOT CONNECTED'}${age > staleMs ? ` (last read ${Number.isFinite(age) ? `${Math.round(age / 1000)} s ago` : 'never'})` : ''}`,
    `stream     ${bus.stream}: ${bus.messages} messages, ${bus.bytes} bytes; published ${bus.published}, duplicates ${bus.duplicates}, failures ${bus.failures}`,
    `writer     lag ${(bus.lagMs / 1000).toFixed(1)} s; pending ${bus.pending}, unacknowledged ${bus.ackPending}; stored ${bus.writer.stored}, refused ${bus.writer.refused}, retried ${bus.writer.retried}`,
  ];
  for (const r of bus.replicas)
    lines.push(`replica    ${r.server}: ${r.current ? 'current' : 'NOT CURRENT'}, ${r.lag} behind`);
  lines.push(`audit      ${bus.audit.stream}: ${bus.audit.kept} entries taken from the bus`);
  const l = bus.lease;
  lines.push(
    l
      ? `lease      ${l.leads ? `this tower (${l.holder}) leads` : `standby ${l.holder}; the leader is ${l.leader ?? 'not known'}${l.leaderAddress ? ` at ${l.leaderAddress}` : ''}`}`
      : 'lease      none (no bus.lease: this tower is the only one)',
  );
  return { lines, ok: bus.connected && age <= staleMs };
}
