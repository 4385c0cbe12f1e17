/**
 * Runs a scenario on the testbed that is up: each step at its time, a line printed, the
 * step posted to the tower (POST /api/v1/mesh/steps, so its events show it with the
 * tower's answer), then the change made. Steps are checked against the testbed first.
 */
import type { StepAction } from '../../tower/api/mesh-types.js';
import {
  readState,
  type TestbedState,
  testbedLink,
  testbedLinkSet,
  testbedMgmt,
  testbedTraffic,
  towerApi,
} from '../testbed.js';
import { trafficPlan } from '../traffic.js';
import type { ScenarioSpec, ScenarioStep } from './schema.js';

export interface StepDone {
  at: number;
  timeMs: number;
  action: StepAction;
  subject: string;
  label: string;
}

const pair = (a: string, b: string) => `${a}-${b}`;

/** What is wrong with the scenario on this testbed, each in a line; none: it can run. */
export function scenarioProblems(state: Pick<TestbedState, 'plan' | 'config'>, spec: ScenarioSpec): string[] {
  const nodes = new Set(state.plan.nodes.map((n) => n.name));
  const links = new Set(state.plan.links.flatMap((l) => [pair(l.a, l.b), pair(l.b, l.a)]));
  const services = new Set(trafficPlan(state.plan, state.config).map((p) => p.service));
  return spec.steps.flatMap((s, i) => {
    const where = `step ${i + 1} (at ${s.at} s)`;
    if ('link' in s && !links.has(pair(s.a, s.b)))
      return [
        `${where}: no radio link between ${s.a} and ${s.b}; links: ${state.plan.links.map((l) => pair(l.a, l.b)).join(', ')}`,
      ];
    if (
      'link' in s &&
      s.link === 'set' &&
      s.rateMbit !== undefined &&
      s.rateMbit > state.config.link.rateMbit
    )
      return [`${where}: rate ${s.rateMbit} Mbit/s is above the links' ${state.config.link.rateMbit} Mbit/s`];
    if ('mgmt' in s && !nodes.has(s.node)) return [`${where}: no node ${s.node}`];
    if ('traffic' in s && !services.has(s.service))
      return [`${where}: the testbed makes no ${s.service} traffic`];
    return [];
  });
}

/** What a step is, for the tower and the terminal. */
function describe(s: ScenarioStep): Pick<StepDone, 'action' | 'subject' | 'label'> {
  if ('link' in s) {
    const subject = pair(s.a, s.b);
    if (s.link === 'set') {
      const what = [
        s.rateMbit !== undefined ? `${s.rateMbit} Mbit/s` : '',
        s.lossPct !== undefined ? `${s.lossPct} % loss` : '',
      ].filter(Boolean);
      return { action: 'link-set', subject, label: `radio link ${subject} degraded to ${what.join(', ')}` };
    }
    return s.link === 'cut'
      ? { action: 'link-cut', subject, label: `radio link ${subject} cut` }
      : { action: 'restore', subject, label: `radio link ${subject} restored` };
  }
  if ('mgmt' in s)
    return s.mgmt === 'cut'
      ? { action: 'mgmt-cut', subject: s.node, label: `management link of ${s.node} cut` }
      : { action: 'mgmt-restore', subject: s.node, label: `management link of ${s.node} restored` };
  if ('restore' in s) return { action: 'restore', subject: 'all', label: 'everything restored' };
  return {
    action: s.traffic === 'on' ? 'traffic-on' : 'traffic-off',
    subject: s.service,
    label: `${s.service} traffic ${s.traffic}`,
  };
}

/** Every link back to its configured rate and loss, every cut restored. */
async function restoreAll(): Promise<void> {
  const state = readState();
  if (!state) throw new Error('no testbed is up');
  const { rateMbit, lossPct } = state.config.link;
  for (const key of Object.keys(state.set)) {
    const [a = '', b = ''] = key.split('-');
    await testbedLinkSet(a, b, { rateMbit, lossPct });
  }
  for (const key of readState()?.cut ?? []) {
    const [a = '', b = ''] = key.split('-');
    testbedLink('restore', a, b);
  }
  for (const node of readState()?.mgmtCut ?? []) testbedMgmt('restore', node);
}

async function apply(s: ScenarioStep): Promise<void> {
  if ('link' in s) {
    if (s.link === 'set')
      await testbedLinkSet(s.a, s.b, {
        ...(s.rateMbit !== undefined ? { rateMbit: s.rateMbit } : {}),
        ...(s.lossPct !== undefined ? { lossPct: s.lossPct } : {}),
      });
    else testbedLink(s.link, s.a, s.b);
  } else if ('mgmt' in s) testbedMgmt(s.mgmt, s.node);
  else if ('restore' in s) await restoreAll();
  else await testbedTraffic(s.traffic, s.service);
}

function sleepUntil(t: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, t - Date.now()));
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/**
 * Runs the steps from `startMs`, and returns when the last is done and `end` has come (or
 * at once when `signal` aborts): the steps done.
 */
export async function runScenario(
  state: TestbedState,
  spec: ScenarioSpec,
  print: (line: string) => void,
  signal: AbortSignal,
  startMs = Date.now(),
): Promise<StepDone[]> {
  const problems = scenarioProblems(state, spec);
  if (problems.length) throw new Error(`scenario ${spec.name}:\n  ${problems.join('\n  ')}`);
  const done: StepDone[] = [];
  for (const s of [...spec.steps].sort((x, y) => x.at - y.at)) {
    await sleepUntil(startMs + s.at * 1000, signal);
    if (signal.aborted) return done;
    const d = describe(s);
    // Posted first: the step's time is before the change, and the answer's times count from it.
    const posted = await towerApi<{ timeMs: number }>(state, 'mesh/steps', d, 'POST').catch(
      (err: Error) => err,
    );
    if (posted instanceof Error) print(`  (the tower did not take the step: ${posted.message})`);
    await apply(s);
    const timeMs = posted instanceof Error ? Date.now() : posted.timeMs;
    print(`t+${s.at} s  ${d.label}`);
    done.push({ at: s.at, timeMs, ...d });
  }
  if (spec.end !== undefined) await sleepUntil(startMs + spec.end * 1000, signal);
  return done;
}
