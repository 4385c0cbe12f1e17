/**
 * The tower's QoS service: keeps the policy (restored from the audit log at start), validates
 * and audits every change, pushes each node its share at once and tracks what each node
 * reports — the version in force, a refusal and its reason, per-class counters turned into
 * rates — which also feed the closed loop when the policy's automatic mode is on. For a
 * link whose rate is `auto` the loop takes capacity and load from the node's newest mesh
 * report of that link, and the classes are built at the radio's maximum rate.
 *
 * With a bus (docs/bus.md) the audit log lives on it: a standby tower follows the leader's
 * entries (adopt), changes nothing itself, and has the policy in force when it leads.
 */
import type { QosCounters__Output, QosPolicy } from '../../proto/index.js';
import { towerLog as log } from '../../shared/log.js';
import type { AutoLinkView, QosRate } from '../api/qos-types.js';
import type { LinkRow, QosAuditRow } from '../model.js';
import { type CompiledServices, checkWithServices, withServices } from '../services/compile.js';
import type { DuckStore } from '../store/duckdb.js';
import { ClosedLoop, type LoopDecision } from './loop.js';
import { EMPTY_POLICY, QosPolicySpec } from './model.js';
import { type CeilingLimits, nodePolicy } from './resolve.js';
import { mbit, validatePolicy } from './validate.js';

export type QosPush = (policy: QosPolicy) => void;

export interface NodeQosState {
  connected: boolean;
  /** the version the node reports in force */
  applied: number;
  refused: { version: number; error: string } | undefined;
  /** per link and class: bits per second over the last report interval, and drops in it */
  rates: QosRate[];
  reportedMs: number;
}

/** What the newest mesh report of a radio link end says (bps), and when the tower had it. */
export interface MeasuredLink {
  capacityBps: number;
  maxCapacityBps: number;
  loadTxBps: number;
  state: LinkRow['state'];
  receivedMs: number;
}

/** A mesh report older than this (at the tower) is not acted on: the node stopped measuring. */
const MEASURED_FRESH_MS = 5000;

/** How much of each node's counters the tower keeps, for rates over a window (services' intents). */
const HISTORY_MS = 15_000;

/** A class's rate on one link over a window of the node's counters. */
export interface ClassWindow {
  bps: number;
  drops: number;
  windowMs: number;
}

/** The services' rules in force (docs/services.md), the version that holds them, and a refusal. */
export interface ServicesInForce {
  compiled: CompiledServices | undefined;
  version: number;
  sinceMs: number | null;
  refused: string[];
}

export interface SetResult {
  ok: boolean;
  version?: number;
  errors?: string[];
  /** Why no change can be made here now (a standby; the bus away): nothing changed. */
  unavailable?: string;
}

export interface QosServiceOptions {
  /** Where audit entries go first (the bus); without it, the store only. Throws when not taken. */
  audit?: (row: QosAuditRow) => Promise<void>;
  /** With a leader lease: why this tower changes no policy now (undefined: it leads). */
  standby?: () => string | undefined;
}

export class QosService {
  private spec: QosPolicySpec = EMPTY_POLICY;
  private version = 0;
  private readonly pushers = new Map<string, QosPush>();
  readonly nodes = new Map<string, NodeQosState>();
  private readonly last = new Map<string, QosCounters__Output>();
  /** Each node's reports of the last HISTORY_MS, oldest first. */
  private readonly history = new Map<string, QosCounters__Output[]>();
  /** The rules compiled from the services' intents, merged into what the nodes get. */
  private servicesState: ServicesInForce = { compiled: undefined, version: 0, sinceMs: null, refused: [] };
  /** What the last setServices was given (with the operator's policy it was checked against). */
  private servicesKey = '';
  private readonly loop = new ClosedLoop();
  private readonly limits: CeilingLimits = new Map();
  private readonly waiters = new Set<() => void>();
  /** The newest mesh report of each radio link end, by "node/iface". */
  readonly measured = new Map<string, MeasuredLink>();
  /** The rate each `auto` link's classes were last built at (the radio's maximum), by "node/iface". */
  private readonly autoRates = new Map<string, number>();
  private readonly autoRate = (node: string, iface: string) => this.autoRates.get(`${node}/${iface}`);

  /** HTTP host → server addresses the monitor saw requests go to (refreshed before each push). */
  private readonly hosts = new Map<string, string[]>();
  private readonly hostAddresses = (host: string) => this.hosts.get(host) ?? [];

  constructor(
    private readonly store: DuckStore,
    private readonly options: QosServiceOptions = {},
  ) {}

  /** Looks up the servers of every HTTP host the rules name, from the last day of HTTP lines. */
  private async refreshHosts(): Promise<void> {
    this.hosts.clear();
    const since = Date.now() - 86_400_000;
    for (const host of new Set(this.spec.rules.flatMap((r) => r.httpHosts))) {
      const r = await this.store.reader.runAndReadAll(
        'SELECT DISTINCT dst FROM http WHERE host = $1 AND NOT response AND time_ms >= $2 ORDER BY dst',
        [host, since],
      );
      this.hosts.set(
        host,
        r.getRowObjectsJS().map((row) => String(row.dst)),
      );
    }
  }

  async load(): Promise<void> {
    const rows = await this.store.loadQosAudit(1000);
    this.version = rows.reduce((m, r) => Math.max(m, r.version), 0);
    const current = rows.find((r) => r.action !== 'refused');
    if (current) this.spec = QosPolicySpec.parse(current.policy);
    await this.refreshHosts();
  }

  get policy(): {
    version: number;
    policy: QosPolicySpec;
    limits: Record<string, Record<string, number>>;
    measured: Record<string, AutoLinkView>;
  } {
    const limits: Record<string, Record<string, number>> = {};
    for (const [node, ifaces] of this.limits)
      for (const [iface, classes] of ifaces) limits[`${node}/${iface}`] = Object.fromEntries(classes);
    const measured: Record<string, AutoLinkView> = {};
    for (const l of this.effective.links.filter((x) => x.rateBps === 'auto')) {
      const key = `${l.node}/${l.iface}`;
      const m = this.measured.get(key);
      if (m)
        measured[key] = {
          rateBps: this.autoRates.get(key) ?? null,
          capacityBps: m.capacityBps,
          loadTxBps: m.loadTxBps,
          state: m.state,
        };
    }
    return { version: this.version, policy: this.spec, limits, measured };
  }

  /** A node's share of the policy in force (for its welcome). */
  connect(node: string, push: QosPush): QosPolicy {
    this.pushers.set(node, push);
    const n = this.nodeState(node);
    n.connected = true;
    return this.forNode(node);
  }

  disconnect(node: string, push: QosPush): void {
    if (this.pushers.get(node) !== push) return;
    this.pushers.delete(node);
    this.nodeState(node).connected = false;
  }

  private nodeState(node: string): NodeQosState {
    let n = this.nodes.get(node);
    if (!n) {
      n = { connected: false, applied: 0, refused: undefined, rates: [], reportedMs: 0 };
      this.nodes.set(node, n);
    }
    return n;
  }

  /** The operator's policy with the services' rules, links and guarantees: what the nodes run. */
  private get effective(): QosPolicySpec {
    return withServices(this.spec, this.servicesState.compiled);
  }

  get operatorPolicy(): QosPolicySpec {
    return this.spec;
  }

  get services(): ServicesInForce {
    return this.servicesState;
  }

  private forNode(node: string): QosPolicy {
    return nodePolicy(this.effective, this.version, node, this.limits, this.hostAddresses, this.autoRate);
  }

  /**
   * The services' compiled rules (src/tower/services/compile.ts): checked with the operator's
   * policy, then pushed as a new version (audited `services`); refused (audited once) if the
   * two together break a rule, the rules before stay in force. The same input again is a no-op.
   */
  async setServices(compiled: CompiledServices): Promise<{ ok: boolean; errors: string[] }> {
    const key = `${JSON.stringify(this.spec)}\0${JSON.stringify(compiled)}`;
    if (this.servicesKey === key)
      return { ok: this.servicesState.refused.length === 0, errors: this.servicesState.refused };
    this.servicesKey = key;
    const errors = checkWithServices(this.spec, compiled);
    if (this.options.standby?.()) {
      // Worked out here from the same store as the leader's, in force once this tower leads.
      this.servicesState = { compiled, version: this.version, sinceMs: Date.now(), refused: errors };
      return { ok: errors.length === 0, errors };
    }
    if (errors.length) {
      this.servicesState = { ...this.servicesState, refused: errors };
      await this.audit('services', 'refused', this.version, errors.join('; '), compiled);
      log.warn({ errors }, "QoS: the services' rules refused");
      return { ok: false, errors };
    }
    const before = this.servicesState.compiled;
    this.servicesState = { compiled, version: this.version + 1, sinceMs: Date.now(), refused: [] };
    this.version++;
    this.rateMeasuredAutoLinks();
    const summary = describeServices(before, compiled);
    await this.audit('services', 'services', this.version, summary, this.spec);
    log.info({ version: this.version, summary }, "QoS: the services' rules set");
    this.pushAll();
    return { ok: true, errors: [] };
  }

  /** A class's rate on a node's link over the last `windowMs` of its reports (bytes never went back). */
  classWindow(node: string, iface: string, cls: string, windowMs: number): ClassWindow | undefined {
    const reports = this.history.get(node) ?? [];
    const newest = reports.at(-1);
    const at = (r: QosCounters__Output) => r.classes.find((x) => x.iface === iface && x.class === cls);
    const end = newest && at(newest);
    if (!newest || !end) return undefined;
    let start = { timeMs: newest.timeMs, c: end };
    for (let i = reports.length - 2; i >= 0; i--) {
      const r = reports[i];
      const c = r && at(r);
      if (!r || !c || c.bytes > start.c.bytes || newest.timeMs - r.timeMs > windowMs) break;
      start = { timeMs: r.timeMs, c };
    }
    const ms = newest.timeMs - start.timeMs;
    return {
      bps: ms > 0 ? ((end.bytes - start.c.bytes) * 8 * 1000) / ms : 0,
      drops: end.drops - start.c.drops,
      windowMs: ms,
    };
  }

  /** An operator's policy: refused with the reasons (and audited), or stored, audited and pushed. */
  async set(who: string, input: unknown): Promise<SetResult> {
    const standby = this.options.standby?.();
    if (standby) return { ok: false, unavailable: `${standby}: set the policy there` };
    const v = validatePolicy(input);
    if (!v.ok) {
      await this.audit(who, 'refused', this.version, v.errors.join('; '), input);
      log.warn({ who, errors: v.errors }, 'QoS policy refused');
      return { ok: false, errors: v.errors };
    }
    const summary = describeChange(this.spec, v.policy);
    try {
      // Audited (on the bus, with one) before it takes effect: a change the bus did not take is none.
      await this.audit(who, 'set', this.version + 1, summary, v.policy, true);
    } catch (err) {
      log.error({ who, err }, 'QoS policy not set: its audit entry was not taken');
      return { ok: false, unavailable: `the audit log did not take the change: ${(err as Error).message}` };
    }
    this.spec = v.policy;
    this.limits.clear();
    this.rateMeasuredAutoLinks();
    for (const link of this.spec.links) this.loop.forget(`${link.node}/${link.iface}`);
    this.version++;
    log.info({ who, version: this.version, summary }, 'QoS policy set');
    await this.refreshHosts();
    this.pushAll();
    return { ok: true, version: this.version };
  }

  /** Auto links already measured are built at once, at the radio's maximum rate. */
  private rateMeasuredAutoLinks(): void {
    for (const l of this.effective.links.filter((x) => x.rateBps === 'auto')) {
      const m = this.measured.get(`${l.node}/${l.iface}`);
      if (m && m.maxCapacityBps > 0) this.autoRates.set(`${l.node}/${l.iface}`, m.maxCapacityBps);
    }
  }

  private pushAll(): void {
    for (const [node, push] of this.pushers) push(this.forNode(node));
  }

  /**
   * Keeps an audit entry: on the bus first when there is one. An entry the bus does not take
   * is `required`'s error; else (the automatic ones) it is logged and kept in this store only.
   */
  private async audit(
    who: string,
    action: string,
    version: number,
    summary: string,
    policy: unknown,
    required = false,
  ): Promise<void> {
    const row = { timeMs: Date.now(), who, action, version, summary, policy };
    if (!this.options.audit) return this.store.appendQosAudit(row);
    try {
      await this.options.audit(row);
    } catch (err) {
      if (required) throw err;
      log.error({ err, action, version }, 'QoS audit entry not on the bus: kept in this store only');
      await this.store.appendQosAudit(row);
    }
  }

  /**
   * Another tower's audit entry from the bus (this one's come back too, and change nothing):
   * a newer version is the policy in force here too, unless it was a refusal.
   */
  adopt(row: QosAuditRow): void {
    if (row.version <= this.version) return;
    this.version = row.version;
    if (row.action === 'refused') return;
    this.spec = QosPolicySpec.parse(row.policy);
    this.limits.clear();
    log.info(
      { who: row.who, version: row.version, summary: row.summary },
      "QoS policy of the bus's audit log",
    );
    void this.refreshHosts()
      .then(() => this.pushAll())
      .catch((err: Error) => log.error({ err }, 'QoS: hosts not looked up'));
  }

  auditLog(limit = 200): Promise<QosAuditRow[]> {
    return this.store.loadQosAudit(limit);
  }

  /** Resolves once every connected node that has links in the policy runs `version` or refused it. */
  async settled(version: number, timeoutMs: number): Promise<boolean> {
    const done = () =>
      [...this.pushers.keys()].every((node) => {
        const n = this.nodes.get(node);
        return n && (n.applied >= version || (n.refused?.version ?? 0) >= version);
      });
    if (done()) return true;
    return new Promise((resolve) => {
      const check = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        resolve(false);
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** A node's report: its version, any refusal, counters → rates → the closed loop. */
  async counters(node: string, c: QosCounters__Output): Promise<void> {
    const n = this.nodeState(node);
    n.applied = c.policyVersion;
    n.refused = c.refusedVersion ? { version: c.refusedVersion, error: c.error } : undefined;
    n.reportedMs = Date.now();
    const prev = this.last.get(node);
    this.last.set(node, c);
    const kept = (this.history.get(node) ?? []).filter(
      (r) => r.timeMs < c.timeMs && c.timeMs - r.timeMs <= HISTORY_MS,
    );
    this.history.set(node, [...kept, c]);
    for (const w of [...this.waiters]) w();
    if (!prev || prev.policyVersion !== c.policyVersion || c.timeMs <= prev.timeMs) return;
    const seconds = (c.timeMs - prev.timeMs) / 1000;
    const before = new Map(prev.classes.map((x) => [`${x.iface}\0${x.class}`, x]));
    n.rates = c.classes.flatMap((x) => {
      const p = before.get(`${x.iface}\0${x.class}`);
      if (!p || x.bytes < p.bytes) return [];
      return [
        {
          iface: x.iface,
          class: x.class,
          bps: ((x.bytes - p.bytes) * 8) / seconds,
          drops: x.drops - p.drops,
        },
      ];
    });
    if (this.spec.auto.enabled) await this.runLoop(node, c.timeMs, n.rates);
  }

  /**
   * A node's mesh reports (every stored batch): kept for the loop. The first report of an
   * `auto` link, or one whose radio's maximum rate changed, rebuilds that link's classes.
   */
  async linkReports(node: string, rows: LinkRow[]): Promise<void> {
    const now = Date.now();
    for (const r of rows) {
      const key = `${node}/${r.iface}`;
      this.measured.set(key, {
        capacityBps: r.capacityBps,
        maxCapacityBps: r.maxCapacityBps,
        loadTxBps: r.loadTxBps,
        state: r.state,
        receivedMs: now,
      });
      // A standby follows the leader's versions; it builds its own once it leads.
      if (this.options.standby?.()) continue;
      const auto = this.effective.links.some(
        (l) => l.node === node && l.iface === r.iface && l.rateBps === 'auto',
      );
      if (!auto || r.maxCapacityBps <= 0 || this.autoRates.get(key) === r.maxCapacityBps) continue;
      const was = this.autoRates.get(key);
      this.autoRates.set(key, r.maxCapacityBps);
      this.version++;
      const summary = `link ${key}: rate auto, classes built at ${mbit(r.maxCapacityBps)} (the ${r.capacityFrom === 'dlep' ? "radio's maximum, DLEP" : "uplink's configured rate"})${was ? `, was ${mbit(was)}` : ''}`;
      await this.audit('auto', 'auto-rate', this.version, summary, this.spec);
      log.info({ node, iface: r.iface, version: this.version, summary }, 'QoS: an auto link measured');
      this.pushAll();
    }
  }

  /** The loop's view of a link now: the policy's rate and the node's HTB, or for `auto` its mesh report. */
  private linkSample(
    node: string,
    link: QosPolicySpec['links'][number],
    mine: NodeQosState['rates'],
  ): { rateBps: number; linkBps: number; builtAtBps?: number } | undefined {
    if (link.rateBps !== 'auto') {
      const whole = mine.find((r) => r.class === '*');
      return whole && { rateBps: link.rateBps, linkBps: whole.bps };
    }
    const m = this.measured.get(`${node}/${link.iface}`);
    if (!m || Date.now() - m.receivedMs > MEASURED_FRESH_MS || m.state === 'down' || m.capacityBps <= 0)
      return undefined;
    const builtAtBps = this.autoRates.get(`${node}/${link.iface}`);
    return { rateBps: m.capacityBps, linkBps: m.loadTxBps, ...(builtAtBps ? { builtAtBps } : {}) };
  }

  private async runLoop(node: string, timeMs: number, rates: NodeQosState['rates']): Promise<void> {
    const effective = this.effective;
    for (const link of effective.links.filter((l) => l.node === node)) {
      const mine = rates.filter((r) => r.iface === link.iface);
      const now = this.linkSample(node, link, mine);
      if (!now) continue;
      const key = `${node}/${link.iface}`;
      const decision = this.loop.step(
        key,
        { timeMs, ...now, classBps: new Map(mine.map((r) => [r.class, r.bps])) },
        effective.classes,
        effective.auto,
      );
      if (decision) await this.enact(node, link.iface, decision);
    }
  }

  private async enact(node: string, iface: string, d: LoopDecision): Promise<void> {
    let ifaces = this.limits.get(node);
    if (!ifaces) {
      ifaces = new Map();
      this.limits.set(node, ifaces);
    }
    if (d.action === 'auto-lower') ifaces.set(iface, d.limits);
    else ifaces.delete(iface);
    this.version++;
    await this.audit('auto', d.action, this.version, d.reason, this.spec);
    log.info({ node, iface, version: this.version, reason: d.reason }, `QoS closed loop: ${d.action}`);
    this.pushAll();
  }
}

/** What a change of the services' rules did, in one line for the audit log. */
function describeServices(before: CompiledServices | undefined, after: CompiledServices): string {
  const links = (c: CompiledServices | undefined) =>
    new Set((c?.rules ?? []).map((r) => `${r.scope?.node}/${r.scope?.iface}`));
  const [was, now] = [links(before), links(after)];
  const added = [...now].filter((l) => !was.has(l));
  const removed = [...was].filter((l) => !now.has(l));
  const parts = [`${after.rules.length} service rules on ${now.size} links`];
  if (added.length) parts.push(`now on ${added.join(', ')}`);
  if (removed.length) parts.push(`no longer on ${removed.join(', ')}`);
  const raised = Object.entries(after.guarantees).map(([c, bps]) => `${c} ${mbit(bps)}`);
  if (raised.length) parts.push(`guarantees needed: ${raised.join(', ')}`);
  return parts.join('; ');
}

/** What an operator's change did, in one line for the audit log. */
export function describeChange(before: QosPolicySpec, after: QosPolicySpec): string {
  const parts: string[] = [];
  const diff = (what: string, a: { name: string }[], b: { name: string }[]) => {
    const was = new Map(a.map((x) => [x.name, JSON.stringify(x)]));
    const now = new Map(b.map((x) => [x.name, JSON.stringify(x)]));
    const added = [...now.keys()].filter((k) => !was.has(k));
    const removed = [...was.keys()].filter((k) => !now.has(k));
    const changed = [...now.keys()].filter((k) => was.has(k) && was.get(k) !== now.get(k));
    if (added.length) parts.push(`${what} added: ${added.join(', ')}`);
    if (removed.length) parts.push(`${what} removed: ${removed.join(', ')}`);
    if (changed.length) parts.push(`${what} changed: ${changed.join(', ')}`);
  };
  diff('classes', before.classes, after.classes);
  diff('rules', before.rules, after.rules);
  diff(
    'links',
    before.links.map((l) => ({ ...l, name: `${l.node}/${l.iface}` })),
    after.links.map((l) => ({ ...l, name: `${l.node}/${l.iface}` })),
  );
  if (JSON.stringify(before.auto) !== JSON.stringify(after.auto))
    parts.push(
      `automatic mode ${after.auto.enabled ? 'on' : 'off'} (congested at ${after.auto.congestedAt}, clear at ${after.auto.clearAt}, hold ${after.auto.holdMs} ms)`,
    );
  return parts.join('; ') || 'no change';
}
