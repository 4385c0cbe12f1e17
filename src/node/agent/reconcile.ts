/**
 * One reconcile round: observe → plan → carry out, one AgentEvent per action. The loop runs
 * a cheap round every `checkIntervalMs` (namespaces from /run/netns, the node's links in one
 * `ip` call, the monitored ports' tcx hooks by syscall) and a deep one every `deepEvery`
 * rounds (rules, routes, HTB, every member's inside). A port that lost its carrier, or a
 * missing namespace, sends the cheap round into that member at once.
 */
import { nodeLog as log } from '../../shared/log.js';
import { type Desired, ISOLATION_PREF, MANAGEMENT_PREF, namespacePrefix } from './desired.js';
import type { AgentEvent, AgentEventHandler } from './events.js';
import { Linux } from './linux.js';
import type { SliceMonitor } from './monitoring.js';
import {
  listNamespaces,
  type Observed,
  readForwarding,
  readHtb,
  readLinks,
  readMember,
  readRoutes,
  readRules,
  readVms,
} from './observe.js';
import { type Action, monitorEntity, plan } from './plan.js';

/** Reads what the plan compares. `deep`: everything; otherwise links, namespaces and suspect members. */
export async function observeNode(desired: Desired, deep: boolean, previous?: Desired): Promise<Observed> {
  const netns = desired.netns;
  const namespaces = listNamespaces();
  const links = await readLinks(netns);
  const vms = readVms(namespacePrefix(desired));
  const observed: Observed = { namespaces, links, vms, members: new Map(), htb: new Map() };
  for (const s of desired.slices) {
    for (const m of s.members) {
      if (m.kind === 'vm' || !namespaces.has(m.netns)) continue;
      const port = links.get(m.port);
      if (deep || (port && !(port.up && port.lowerUp)))
        observed.members.set(m.netns, await readMember(m.netns));
    }
  }
  if (!deep) return observed;
  observed.rules = await readRules(netns, [ISOLATION_PREF, MANAGEMENT_PREF]);
  if (desired.management) observed.managementRoutes = await readRoutes(netns, desired.management.table);
  const uplinks = new Set([...desired.uplinks, ...(previous?.uplinks ?? [])].map((u) => u.iface));
  for (const u of uplinks) if (links.has(u)) observed.htb.set(u, await readHtb(netns, u));
  observed.forwarding = readForwarding(netns);
  const main = await readRoutes(netns, 'main');
  observed.defaultVia = main.find((r) => r.dst === 'default')?.gateway ?? '';
  return observed;
}

export interface RoundResult {
  actions: Action[];
  events: AgentEvent[];
}

/** Carries out a plan in order; a failed action is reported and the rest still tried. */
export async function execute(
  linux: Linux,
  node: string,
  actions: Action[],
  cause: AgentEvent['cause'],
  started: number,
): Promise<AgentEvent[]> {
  const events: AgentEvent[] = [];
  for (const a of actions) {
    const action = Linux.describe(a.op);
    let error: string | undefined;
    try {
      await linux.execute(a.op);
    } catch (err) {
      error = (err as Error).message;
    }
    events.push({
      time: Date.now(),
      node,
      entity: a.entity,
      problem: a.problem,
      action,
      ok: error === undefined,
      ...(error !== undefined ? { error } : {}),
      cause,
      tookMs: Math.round(performance.now() - started),
    });
  }
  return events;
}

export interface ReconcilerOptions {
  intervalMs: number;
  /** A deep round every this many rounds. */
  deepEvery?: number;
  onEvent: AgentEventHandler;
  monitor?: SliceMonitor;
}

export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private rounds = 0;
  private stopped = true;
  /** Failures of the last round, already reported. */
  private readonly reported = new Set<string>();

  constructor(
    private desired: Desired,
    private readonly linux: Linux,
    private readonly options: ReconcilerOptions,
  ) {}

  setDesired(desired: Desired): void {
    this.desired = desired;
  }

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round()
        .then(() => undefined)
        .catch((err) => log.error({ err }, 'reconcile round failed'))
        .finally(() => {
          this.running = undefined;
          this.schedule();
        });
    }, this.options.intervalMs);
  }

  /** Waits for a round in progress, so apply and remove never run beside one. */
  async pause(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  resume(): void {
    if (this.stopped) this.start();
  }

  async stop(): Promise<void> {
    await this.pause();
  }

  /** One round of drift repair. */
  async round(): Promise<AgentEvent[]> {
    const started = performance.now();
    const deep = this.rounds++ % (this.options.deepEvery ?? 10) === 0;
    const observed = await observeNode(this.desired, deep);
    const actions = plan({ desired: this.desired, observed });
    const fixable = actions.filter((a) => a.op.op !== 'none');
    const events = await execute(this.linux, this.desired.node, fixable, 'drift', started);
    for (const a of actions.filter((x) => x.op.op === 'none')) {
      events.push({
        time: Date.now(),
        node: this.desired.node,
        entity: a.entity,
        problem: a.problem,
        action: Linux.describe(a.op),
        ok: false,
        cause: 'drift',
        tookMs: 0,
      });
    }
    if (this.options.monitor) {
      for (const r of this.options.monitor.reconcile(this.desired.monitored)) {
        events.push({
          time: Date.now(),
          node: this.desired.node,
          entity: monitorEntity(this.desired, r.port),
          problem: r.problem,
          action: r.action,
          ok: r.ok,
          ...(r.error ? { error: r.error } : {}),
          cause: 'drift',
          tookMs: Math.round(performance.now() - started),
        });
      }
    }
    const fresh = this.unreported(events);
    for (const e of fresh) this.options.onEvent(e);
    return fresh;
  }

  /**
   * A failure that repeats round after round (an uplink that is not there, a command that
   * keeps failing) is reported once, and again only after it went away.
   */
  private unreported(events: AgentEvent[]): AgentEvent[] {
    const failing = new Set(
      events.filter((e) => !e.ok).map((e) => `${e.entity}|${e.problem}|${e.error ?? ''}`),
    );
    const fresh = events.filter(
      (e) => e.ok || !this.reported.has(`${e.entity}|${e.problem}|${e.error ?? ''}`),
    );
    this.reported.clear();
    for (const k of failing) this.reported.add(k);
    return fresh;
  }
}
