/**
 * The operator's steps on the mesh's event list (POST /api/v1/mesh/steps, docs/mesh.md):
 * what a step may say, and the answer the tower gave it, read from the events that follow
 * it. Pure: events in, steps with their answers out.
 */
import { z } from 'zod';
import type { MeshChange, MeshEvent, StepAction, StepAnswer, StepEvent } from './mesh-types.js';

/** An answer is looked for up to the next step, and at most this long after. */
export const ANSWER_MS = 60_000;
/** At most this many events of an answer are listed. */
const ANSWER_LIMIT = 20;

const ACTIONS = [
  'link-set',
  'link-cut',
  'restore',
  'mgmt-cut',
  'mgmt-restore',
  'traffic-on',
  'traffic-off',
] as const satisfies readonly StepAction[];

export const MeshStepSpec = z
  .object({
    action: z.enum(ACTIONS),
    subject: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a link "n1-n2", a node, a service or "all"'),
    label: z.string().max(200).default(''),
  })
  .strict();

export type MeshStepSpec = z.infer<typeof MeshStepSpec>;

type Answerable = Exclude<MeshChange, StepEvent>;

/** What an event says, in a line. */
export function eventText(e: Answerable): string {
  switch (e.kind) {
    case 'link-down':
    case 'link-up':
    case 'link-degraded':
      return `${e.node} — ${e.peer} ${e.kind.slice(5)}${e.why.length ? ` (${e.why.join('; ')})` : ''}`;
    case 'route-changed':
      return `${e.node} → ${e.to ?? 'outside'} (${e.prefixes.join(', ')}): next hop ${e.before ?? 'none'} → ${e.after ?? 'none'}`;
    case 'relayed':
      return `${e.to} reached from ${e.node} through ${e.after}`;
    case 'node-via':
      return e.via ? `${e.node} reaches the tower through ${e.via}` : `${e.node} reaches the tower directly`;
    case 'qos-loop':
      return `QoS ${e.action}: ${e.summary}`;
  }
}

const first = (events: Answerable[], match: (e: Answerable) => boolean) => events.find(match)?.timeMs;

/** Whether e is of the link between the two nodes of `subject` ("a-b"). */
function onLink(e: Answerable, subject: string): boolean {
  const [a, b] = subject.split('-');
  const ends = new Set([a, b]);
  if (e.kind === 'link-down' || e.kind === 'link-up' || e.kind === 'link-degraded')
    return ends.has(e.node) && ends.has(e.peer) && e.node !== e.peer;
  if (e.kind === 'route-changed' || e.kind === 'relayed')
    return ends.has(e.node) && (ends.has(e.before ?? '') || ends.has(e.after ?? ''));
  return false;
}

/** When the tower saw the step (detected) and the traffic took another way (rerouted), ms after it. */
function timesOf(
  step: StepEvent,
  after: Answerable[],
): Pick<StepEvent, 'detectedMs' | 'reroutedMs' | 'qosMs'> {
  const s = step.subject;
  let detected: number | undefined;
  let rerouted: number | undefined;
  switch (step.action) {
    case 'link-cut':
      detected = first(after, (e) => e.kind === 'link-down' && onLink(e, s));
      rerouted = first(after, (e) => e.kind === 'route-changed' && onLink(e, s));
      break;
    case 'link-set':
      detected = first(after, (e) => (e.kind === 'link-degraded' || e.kind === 'link-down') && onLink(e, s));
      rerouted = first(after, (e) => e.kind === 'route-changed' && onLink(e, s));
      break;
    case 'mgmt-cut':
      detected = first(after, (e) => e.kind === 'node-via' && e.node === s && e.via !== null);
      rerouted = detected;
      break;
    case 'mgmt-restore':
      detected = first(after, (e) => e.kind === 'node-via' && e.node === s && e.via === null);
      rerouted = detected;
      break;
    case 'restore':
      // A link back from down says so first as degraded (its loss window still holds the cut) or up.
      detected = first(
        after,
        (e) => (e.kind === 'link-up' || e.kind === 'link-degraded') && (s === 'all' || onLink(e, s)),
      );
      rerouted = first(after, (e) => e.kind === 'route-changed' && (s === 'all' || onLink(e, s)));
      break;
    default:
      break;
  }
  const qos = first(after, (e) => e.kind === 'qos-loop');
  const since = (t: number | undefined) => (t === undefined ? null : t - step.timeMs);
  return { detectedMs: since(detected), reroutedMs: since(rerouted), qosMs: since(qos) };
}

const seconds = (ms: number | null) => (ms === null ? '—' : `${(ms / 1000).toFixed(1)} s`);

/** A step in a line: its label, and when the tower saw it and rerouted. */
function stepText(s: StepEvent): string {
  const times = [
    s.detectedMs !== null ? `detected ${seconds(s.detectedMs)}` : '',
    s.reroutedMs !== null ? `rerouted ${seconds(s.reroutedMs)}` : '',
    s.qosMs !== null ? `QoS ${seconds(s.qosMs)}` : '',
  ].filter(Boolean);
  return `${s.label || `${s.action} ${s.subject}`}${times.length ? ` — ${times.join(', ')}` : ''}`;
}

/**
 * Every event with its line; each step with the events after it (up to the next step, at
 * most ANSWER_MS) as its answer. Newest first.
 */
export function answerSteps(events: MeshChange[]): MeshEvent[] {
  const steps = events.filter((e): e is StepEvent => e.kind === 'step').sort((x, y) => x.timeMs - y.timeMs);
  const others = events.filter((e): e is Answerable => e.kind !== 'step').sort((x, y) => x.timeMs - y.timeMs);
  const answered = steps.map((step, i) => {
    const until = Math.min(steps[i + 1]?.timeMs ?? Number.POSITIVE_INFINITY, step.timeMs + ANSWER_MS);
    const after = others.filter((e) => e.timeMs >= step.timeMs && e.timeMs < until);
    const answer: StepAnswer[] = after.slice(0, ANSWER_LIMIT).map((e) => ({
      kind: e.kind,
      timeMs: e.timeMs,
      afterMs: e.timeMs - step.timeMs,
      text: eventText(e),
    }));
    const done: StepEvent = { ...step, ...timesOf(step, after), answer };
    return { ...done, text: stepText(done) };
  });
  return [...others.map((e) => ({ ...e, text: eventText(e) })), ...answered].sort(
    (x, y) => y.timeMs - x.timeMs,
  );
}
