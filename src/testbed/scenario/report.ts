/**
 * The demo's report at its end (or Ctrl-C), every number from the tower's API over the
 * scenario's window: per service the share of its measured time that its objective held,
 * its p95 and errors; per step the tower's detection, reroute and QoS times; records lost
 * (gaps in each node's stored seqs) and records that came through a relay.
 */
import type { MeshEvents, StepEvent } from '../../tower/api/mesh-types.js';
import type { NodeInfo } from '../../tower/api/node-types.js';
import type { ServiceRow, ServiceSeries } from '../../tower/api/services-types.js';
import { type TestbedState, towerApi } from '../testbed.js';

export interface ServiceReport {
  name: string;
  precedence: ServiceRow['precedence'];
  /** % of the series' steps with requests in which the objective held; null: no objective or no requests */
  heldPct: number | null;
  /** steps with requests, of which so many held */
  steps: number;
  requests: number;
  p95Ms: number | null;
  errorPct: number;
  /** bit/s both ways */
  bps: number;
}

export interface StepReport {
  timeMs: number;
  label: string;
  detectedMs: number | null;
  reroutedMs: number | null;
  qosMs: number | null;
}

export interface ScenarioReport {
  fromMs: number;
  toMs: number;
  services: ServiceReport[];
  steps: StepReport[];
  records: { stored: number; lost: number; relayed: number };
}

/** The series' step: the services' latency periods are 10 s. */
const SERIES_STEP = '10s';

export async function scenarioReport(
  state: TestbedState,
  fromMs: number,
  toMs: number,
): Promise<ScenarioReport> {
  const win = `from=${fromMs}&to=${toMs}`;
  const rows = await towerApi<ServiceRow[]>(state, `services?${win}`);
  const services: ServiceReport[] = [];
  for (const r of rows) {
    const series = await towerApi<ServiceSeries>(
      state,
      `services/${encodeURIComponent(r.name)}/series?${win}&step=${SERIES_STEP}`,
    );
    const measured = series.points.filter((p) => p.rps > 0);
    const held = measured.filter((p) => p.breach === null).length;
    services.push({
      name: r.name,
      precedence: r.precedence,
      heldPct: r.objective && measured.length ? (100 * held) / measured.length : null,
      steps: measured.length,
      requests: r.requests,
      p95Ms: r.p95Ms,
      errorPct: r.errorPct,
      bps: r.bps,
    });
  }
  const events = await towerApi<MeshEvents>(state, `mesh/events?${win}&limit=2000`);
  const steps = events.events
    .filter((e): e is StepEvent & { text: string } => e.kind === 'step')
    .sort((a, b) => a.timeMs - b.timeMs)
    .map((e) => ({
      timeMs: e.timeMs,
      label: e.label,
      detectedMs: e.detectedMs,
      reroutedMs: e.reroutedMs,
      qosMs: e.qosMs,
    }));
  // Every record each node made since the testbed started: a gap between stored runs is lost.
  const nodes = await towerApi<NodeInfo[]>(state, 'nodes');
  let stored = 0;
  let lost = 0;
  for (const n of nodes) {
    const seqs = await towerApi<{ runs: [number, number][]; seqs: number }>(
      state,
      `nodes/${encodeURIComponent(n.name)}/seqs?from=${state.startedAt - 60_000}&to=${Date.now() + 60_000}`,
    );
    stored += seqs.seqs;
    for (let i = 1; i < seqs.runs.length; i++)
      lost += (seqs.runs[i]?.[0] ?? 0) - (seqs.runs[i - 1]?.[1] ?? 0) - 1;
  }
  const relayed = nodes.reduce((s, n) => s + n.recordsRelayed, 0);
  return { fromMs, toMs, services, steps, records: { stored, lost, relayed } };
}

const ms = (v: number | null) => (v === null ? '—' : `${(v / 1000).toFixed(1)} s`);

export function formatReport(r: ScenarioReport): string {
  const lines = [
    `Report, ${new Date(r.fromMs).toISOString()} to ${new Date(r.toMs).toISOString()} (from the tower's API)`,
    '  services           precedence  objective held   p95        errors    requests   traffic',
    ...r.services.map(
      (s) =>
        `  ${s.name.padEnd(18)} ${s.precedence.padEnd(11)} ${(s.heldPct === null ? 'n/a' : `${s.heldPct.toFixed(0)} % of ${s.steps}×10 s`).padEnd(16)} ${(s.p95Ms === null ? '—' : `${s.p95Ms.toFixed(1)} ms`).padEnd(10)} ${`${s.errorPct.toFixed(1)} %`.padEnd(9)} ${String(s.requests).padEnd(10)} ${(s.bps / 1e6).toFixed(2)} Mbit/s`,
    ),
    '  steps                                             detected   rerouted   QoS loop',
    ...r.steps.map(
      (s) =>
        `  ${s.label.slice(0, 48).padEnd(49)} ${ms(s.detectedMs).padEnd(10)} ${ms(s.reroutedMs).padEnd(10)} ${ms(s.qosMs)}`,
    ),
    `  records: ${r.records.stored} stored, ${r.records.lost} lost, ${r.records.relayed} came through a relay`,
  ];
  return lines.join('\n');
}
