/**
 * Whether a service's QoS intent holds (docs/services.md): on every link of its compiled
 * paths, the class's rate over the window from the node's QoS counters against the sum of
 * the guarantees crossing that link, and the class's drops there. A link that carried less
 * than its guarantee and dropped nothing was asked for less: the intent still holds.
 */
import type { IntentHop, ServiceIntent } from '../api/services-types.js';
import type { ClassWindow, ServicesInForce } from '../qos/service.js';
import { linkKey } from './compile.js';
import type { RegisteredService } from './registry.js';

/** The window the rates are measured over, and the least of it that counts as measured. */
export const INTENT_WINDOW_MS = 10_000;
const MEASURED_MS = 3000;
/** The share of its guarantee a link must carry, when it drops the class's packets. */
export const HOLDS_AT = 0.95;

export interface IntentInputs {
  state: ServicesInForce;
  /** the policy version a node runs (0: none) */
  applied: (node: string) => number;
  rate: (node: string, iface: string, cls: string) => ClassWindow | undefined;
}

export function intentOf(s: RegisteredService, p95Ms: number | null, x: IntentInputs): ServiceIntent | null {
  if (s.guaranteeBps === undefined) return null;
  const { compiled, version, sinceMs, refused } = x.state;
  const base = {
    guaranteeBps: s.guaranteeBps,
    qosClass: s.qosClass,
    p95Ms,
    version,
    compiledMs: sinceMs,
  };
  const problem = compiled?.problems.find((p) => p.service === s.name);
  const flows = (compiled?.flows ?? []).filter((f) => f.service === s.name);
  const none = { worstHop: null, hops: [], flows: flows.map(({ service: _, links: __, ...f }) => f) };
  if (refused.length) return { ...base, ...none, status: 'refused', why: refused.join('; ') };
  if (!compiled) return { ...base, ...none, status: 'unenforced', why: 'not compiled yet' };
  if (problem) return { ...base, ...none, status: 'refused', why: problem.reason };
  const lost = flows.find((f) => f.status !== 'ok' && f.status !== 'local');
  if (lost)
    return {
      ...base,
      ...none,
      status: 'no-path',
      why: `${lost.from} → ${lost.to}: ${lost.status} (${lost.hops.join(' → ')})`,
    };
  const seen = new Set<string>();
  const hops: IntentHop[] = [];
  for (const l of flows.flatMap((f) => f.links)) {
    const key = linkKey(l.node, l.iface, s.qosClass);
    if (seen.has(key)) continue;
    seen.add(key);
    const w = x.rate(l.node, l.iface, s.qosClass);
    hops.push({
      node: l.node,
      iface: l.iface,
      guaranteeBps: compiled.linkGuarantees[key] ?? s.guaranteeBps,
      rateBps: w ? Math.round(w.bps) : null,
      drops: w ? w.drops : null,
      windowMs: w?.windowMs ?? 0,
      enforced: x.applied(l.node) >= version && w !== undefined,
    });
  }
  const share = (h: IntentHop) => (h.rateBps ?? 0) / h.guaranteeBps;
  const dropping = (h: IntentHop) => share(h) < HOLDS_AT && (h.drops ?? 0) > 0;
  // The hop that falls shortest while dropping; when none does, the busiest (a direction
  // that carries nothing, such as a UDP stream's way back, says nothing of the guarantee).
  const worse = (h: IntentHop, w: IntentHop) =>
    dropping(h) !== dropping(w) ? dropping(h) : dropping(h) ? share(h) < share(w) : share(h) > share(w);
  const worstHop = hops.reduce<IntentHop | null>((w, h) => (!w || worse(h, w) ? h : w), null);
  const out = { ...base, ...none, hops, worstHop };
  const at = (h: IntentHop) => `${h.node}/${h.iface}`;
  const unenforced = hops.find((h) => !h.enforced);
  if (unenforced)
    return {
      ...out,
      status: 'unenforced',
      why: `${at(unenforced)} does not run the rules (version ${version}) yet`,
    };
  const young = hops.find((h) => h.windowMs < MEASURED_MS);
  if (young) return { ...out, status: 'measuring', why: `${at(young)}: ${young.windowMs} ms of counters` };
  const short = worstHop && dropping(worstHop) ? worstHop : undefined;
  if (short)
    return {
      ...out,
      status: 'violated',
      why: `${at(short)}: ${short.rateBps} bit/s of ${short.guaranteeBps} guaranteed, ${short.drops} packets dropped in ${short.windowMs} ms`,
    };
  return { ...out, status: 'holds', why: null };
}
