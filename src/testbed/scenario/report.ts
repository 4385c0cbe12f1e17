/**
 * The demo's report at its end (or Ctrl-C), every number from the tower's API over the
 * scenario's window: per service the share of its measured time that its objective held,
 * the share of the watch's readings in which its QoS intent held, its p95 and errors; per
 * step the tower's detection, reroute and QoS times, and for a degraded link what the closed
 * loop capped there against what the capped classes carried; records lost (gaps in each
 * node's stored seqs) and records that came through a relay during the scenario.
 */
import type { MeshEvents, StepEvent } from '../../tower/api/mesh-types.js';
import type { NodeInfo } from '../../tower/api/node-types.js';
import type { IntentStatus, ServiceRow, ServiceSeries } from '../../tower/api/services-types.js';
import { meshIfname } from '../plan.js';
import { type TestbedState, towerApi } from '../testbed.js';
import { relayedOf, type ScenarioWatch, type WatchSample } from './watch.js';

export interface ServiceReport {
  name: string;
  precedence: ServiceRow['precedence'];
  /** % of the series' steps with requests in which the objective held; null: none measured */
  heldPct: number | null;
  /** steps with requests, of which so many held */
  steps: number;
  /** why there is no objective to hold (no requests to time), or null */
  noObjective: string | null;
  /** the QoS intent over the watch's readings; null with `noIntent` */
  intent: {
    guaranteeBps: number;
    qosClass: string;
    /** readings of each status */
    statuses: Partial<Record<IntentStatus, number>>;
    readings: number;
    heldPct: number | null;
  } | null;
  noIntent: string | null;
  requests: number;
  p95Ms: number | null;
  errorPct: number;
  /** bit/s both ways */
  bps: number;
}

/** On one end of a degraded link: the loop's caps there, and what each capped class carried. */
export interface CapReport {
  at: string;
  /** class → cap (bit/s); empty: the loop capped nothing here during the step */
  caps: Record<string, number>;
  /** class → median bit/s of the step's readings before the caps and under them (null: no reading) */
  before: Record<string, number | null>;
  under: Record<string, number | null>;
  /** how many readings each is of */
  readings: { before: number; under: number };
}

export interface StepReport {
  timeMs: number;
  label: string;
  action: StepEvent['action'];
  subject: string;
  detectedMs: number | null;
  reroutedMs: number | null;
  qosMs: number | null;
  /** a link-set step: each end of the link */
  caps: CapReport[];
}

export interface ScenarioReport {
  fromMs: number;
  toMs: number;
  services: ServiceReport[];
  steps: StepReport[];
  /** stored and lost: since the testbed started; relayed: during the scenario */
  records: { stored: number; lost: number; relayed: number };
}

/** The series' step: the services' latency periods are 10 s. */
const SERIES_STEP = '10s';

/** The middle reading: a node's rate over one report interval can spike (a late report). */
const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length ? ((v[(v.length - 1) >> 1] ?? 0) + (v[v.length >> 1] ?? 0)) / 2 : null;
};

/** The loop's caps on each end of a degraded link over the step's readings. */
function capsOf(
  step: { timeMs: number; subject: string },
  untilMs: number,
  samples: WatchSample[],
): CapReport[] {
  const [a = '', b = ''] = step.subject.split('-');
  const during = samples.filter((s) => s.timeMs >= step.timeMs && s.timeMs < untilMs);
  return [
    [a, b],
    [b, a],
  ].map(([node = '', peer = '']) => {
    const iface = meshIfname(peer);
    const at = `${node}/${iface}`;
    const capped = during.find((s) => s.limits[at]);
    const caps = capped?.limits[at] ?? {};
    const rateOf = (s: WatchSample, cls: string) =>
      s.rates[node]?.find((r) => r.iface === iface && r.class === cls)?.bps ?? 0;
    const per = (xs: WatchSample[]) =>
      Object.fromEntries(Object.keys(caps).map((c) => [c, median(xs.map((s) => rateOf(s, c)))]));
    const [before, under] = [during.filter((s) => !s.limits[at]), during.filter((s) => s.limits[at])];
    return {
      at,
      caps,
      before: per(before),
      under: per(under),
      readings: { before: before.length, under: under.length },
    };
  });
}

export async function scenarioReport(
  state: TestbedState,
  fromMs: number,
  toMs: number,
  watch: Pick<ScenarioWatch, 'samples' | 'relayedAtStart'>,
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
    const protocols = [...new Set(r.instances.map((i) => i.protocol))];
    const readings = watch.samples.flatMap((s) => (s.intents[r.name] ? [s.intents[r.name]] : []));
    const statuses: Partial<Record<IntentStatus, number>> = {};
    for (const x of readings) if (x) statuses[x] = (statuses[x] ?? 0) + 1;
    services.push({
      name: r.name,
      precedence: r.precedence,
      heldPct: r.objective && measured.length ? (100 * held) / measured.length : null,
      steps: measured.length,
      noObjective: r.objective
        ? null
        : protocols.includes('http')
          ? 'declares none'
          : `${protocols.join('/')}: no requests to time`,
      intent: r.intent
        ? {
            guaranteeBps: r.intent.guaranteeBps,
            qosClass: r.intent.qosClass,
            statuses,
            readings: readings.length,
            heldPct: readings.length ? (100 * (statuses.holds ?? 0)) / readings.length : null,
          }
        : null,
      noIntent: r.intent ? null : `no guarantee declared: the policy's ${r.qosClass} class serves it`,
      requests: r.requests,
      p95Ms: r.p95Ms,
      errorPct: r.errorPct,
      bps: r.bps,
    });
  }
  const events = await towerApi<MeshEvents>(state, `mesh/events?${win}&limit=2000`);
  const stepEvents = events.events
    .filter((e): e is StepEvent & { text: string } => e.kind === 'step')
    .sort((a, b) => a.timeMs - b.timeMs);
  const steps = stepEvents.map((e, i) => ({
    timeMs: e.timeMs,
    label: e.label,
    action: e.action,
    subject: e.subject,
    detectedMs: e.detectedMs,
    reroutedMs: e.reroutedMs,
    qosMs: e.qosMs,
    caps: e.action === 'link-set' ? capsOf(e, stepEvents[i + 1]?.timeMs ?? toMs, watch.samples) : [],
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
  const relayed = relayedOf(nodes) - watch.relayedAtStart;
  return { fromMs, toMs, services, steps, records: { stored, lost, relayed } };
}

const ms = (v: number | null) => (v === null ? '—' : `${(v / 1000).toFixed(1)} s`);
const mb = (bps: number | null | undefined) =>
  bps === null || bps === undefined ? '—' : (bps / 1e6).toFixed(2);

function intentText(s: ServiceReport): string {
  const i = s.intent;
  if (!i) return 'none (a)';
  if (i.heldPct === null) return 'not read';
  return `${i.heldPct.toFixed(0)} % of ${i.readings}`;
}

function capText(c: CapReport): string {
  const classes = Object.keys(c.caps);
  if (!classes.length) return `      ${c.at}: the loop capped nothing`;
  // The squeezed class first: the one pressing its cap hardest.
  const pressing = (k: string) => (c.under[k] ?? 0) / (c.caps[k] ?? 1);
  const top = classes.sort((x, y) => pressing(y) - pressing(x));
  return `      ${c.at}: the loop capped ${top
    .map((k) => `${k} at ${mb(c.caps[k])} (${mb(c.before[k])} → ${mb(c.under[k])})`)
    .join(', ')} Mbit/s (medians of ${c.readings.before} and ${c.readings.under} readings)`;
}

export function formatReport(r: ScenarioReport): string {
  const notes = r.services.flatMap((s) => [
    ...(s.noObjective ? [`${s.name}: no objective (${s.noObjective})`] : []),
    ...(s.noIntent ? [`${s.name}: no QoS intent (${s.noIntent})`] : []),
  ]);
  const intents = r.services.flatMap((s) =>
    s.intent
      ? [
          `${s.name}: at least ${mb(s.intent.guaranteeBps)} Mbit/s between any two instances in class ${s.intent.qosClass}; readings every few seconds: ${Object.entries(
            s.intent.statuses,
          )
            .map(([k, v]) => `${v} ${k}`)
            .join(', ')}`,
        ]
      : [],
  );
  const lines = [
    `Report, ${new Date(r.fromMs).toISOString()} to ${new Date(r.toMs).toISOString()} (from the tower's API)`,
    '  services           precedence  objective held   QoS intent held  p95        errors    requests   traffic',
    ...r.services.map(
      (s) =>
        `  ${s.name.padEnd(18)} ${s.precedence.padEnd(11)} ${(s.heldPct === null ? 'none (a)' : `${s.heldPct.toFixed(0)} % of ${s.steps}×10 s`).padEnd(16)} ${intentText(s).padEnd(16)} ${(s.p95Ms === null ? '—' : `${s.p95Ms.toFixed(1)} ms`).padEnd(10)} ${`${s.errorPct.toFixed(1)} %`.padEnd(9)} ${String(s.requests).padEnd(10)} ${(s.bps / 1e6).toFixed(2)} Mbit/s`,
    ),
    ...intents.map((l) => `    ${l}`),
    ...notes.map((l) => `    (a) ${l}`),
    '  steps                                             detected   rerouted   QoS loop',
    ...r.steps.flatMap((s) => [
      `  ${s.label.slice(0, 48).padEnd(49)} ${ms(s.detectedMs).padEnd(10)} ${ms(s.reroutedMs).padEnd(10)} ${ms(s.qosMs)}`,
      ...(s.caps.length
        ? [
            "    on the degraded link, each class: cap (its rate before → under the cap, the node's QoS counters)",
          ]
        : []),
      ...s.caps.map(capText),
    ]),
    `  records since the testbed started: ${r.records.stored} stored, ${r.records.lost} lost; during the scenario ${r.records.relayed} came through a relay`,
  ];
  return lines.join('\n');
}
