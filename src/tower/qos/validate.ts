/**
 * Validation of an operator's QoS policy, with errors that name the problem: a malformed
 * field, a class defined twice, a guarantee above the class's ceiling, a rule naming an
 * unknown class or a bad prefix, two rules that overlap and send the same traffic to
 * different classes, guarantees that add up to more than a link's rate, more classes or
 * rules than the kernel tables hold.
 */
import { QOS_MAX_RULES } from '../../bpf/types.js';
import { covers, type Prefix, parsePrefix, QOS_CLASS_LIMIT } from '../../node/qos/compile.js';
import { type QosPolicySpec, type QosRuleSpec, QosPolicySpec as Schema } from './model.js';

export type Validation = { ok: true; policy: QosPolicySpec } | { ok: false; errors: string[] };

export const mbit = (bps: number) => `${+(bps / 1e6).toFixed(3)} Mbit/s`;

export function validatePolicy(input: unknown): Validation {
  const parsed = Schema.safeParse(input);
  if (!parsed.success) {
    return {
      ok: false,
      errors: parsed.error.issues.map((i) => `${i.path.join('.') || 'policy'}: ${i.message}`),
    };
  }
  const policy = parsed.data;
  const errors: string[] = [];
  const twice = (what: string, names: string[]) => {
    const seen = new Set<string>();
    for (const n of names) {
      if (seen.has(n)) errors.push(`${what} "${n}" is defined twice`);
      seen.add(n);
    }
  };
  twice(
    'class',
    policy.classes.map((c) => c.name),
  );
  twice(
    'rule',
    policy.rules.map((r) => r.name),
  );
  twice(
    'link',
    policy.links.map((l) => `${l.node}/${l.iface}`),
  );
  if (policy.classes.length > QOS_CLASS_LIMIT)
    errors.push(`${policy.classes.length} classes: a link holds at most ${QOS_CLASS_LIMIT}`);
  if (policy.rules.length > QOS_MAX_RULES)
    errors.push(`${policy.rules.length} rules: a node holds at most ${QOS_MAX_RULES}`);

  for (const c of policy.classes) {
    if (c.ceilingBps > 0 && c.guaranteedBps > c.ceilingBps)
      errors.push(
        `class "${c.name}": guaranteed ${mbit(c.guaranteedBps)} is above its ceiling ${mbit(c.ceilingBps)}`,
      );
  }
  const guaranteed = policy.classes.reduce((s, c) => s + c.guaranteedBps, 0);
  // An `auto` link's rate is known only from its mesh reports: the loop works within what they say.
  for (const l of policy.links) {
    if (l.rateBps !== 'auto' && guaranteed > l.rateBps)
      errors.push(
        `link ${l.node}/${l.iface}: the classes' guarantees add up to ${mbit(guaranteed)}, above the link's rate of ${mbit(l.rateBps)}`,
      );
  }

  const classes = new Set(policy.classes.map((c) => c.name));
  const prefixes = new Map<string, { src: Prefix[]; dst: Prefix[] }>();
  for (const r of policy.rules) {
    if (!classes.has(r.class)) errors.push(`rule "${r.name}": unknown class "${r.class}"`);
    for (const [what, range] of [
      ['source', r.srcPorts],
      ['destination', r.dstPorts],
    ] as const) {
      if (range && range[0] > range[1])
        errors.push(`rule "${r.name}": ${what} ports ${range[0]}-${range[1]} run backwards`);
    }
    const parse = (list: string[]) =>
      list.flatMap((t) => {
        try {
          return [parsePrefix(t)];
        } catch (err) {
          errors.push(`rule "${r.name}": ${(err as Error).message}`);
          return [];
        }
      });
    prefixes.set(r.name, { src: parse(r.srcPrefixes), dst: parse(r.dstPrefixes) });
  }
  if (errors.length) return { ok: false, errors };

  for (let i = 0; i < policy.rules.length; i++) {
    for (let j = i + 1; j < policy.rules.length; j++) {
      const a = policy.rules[i]!;
      const b = policy.rules[j]!;
      if (a.class === b.class) continue;
      if (overlap(a, b, prefixes.get(a.name)!, prefixes.get(b.name)!))
        errors.push(
          `rules "${a.name}" and "${b.name}" overlap: some traffic matches both, and they send it to different classes ("${a.class}" and "${b.class}")`,
        );
    }
  }
  return errors.length ? { ok: false, errors } : { ok: true, policy };
}

const ANY_PORT: [number, number] = [0, 65535];

function prefixesMeet(a: Prefix[], b: Prefix[]): boolean {
  if (a.length === 0 || b.length === 0) return true;
  return a.some((p) => b.some((q) => covers(p, q) || covers(q, p)));
}

/** Whether some packet could match both rules. */
function overlap(
  a: QosRuleSpec,
  b: QosRuleSpec,
  pa: { src: Prefix[]; dst: Prefix[] },
  pb: { src: Prefix[]; dst: Prefix[] },
): boolean {
  const same = <T>(x: T | undefined, y: T | undefined, any: T | undefined) =>
    x === any || y === any || x === y;
  if (!same(a.scope?.node, b.scope?.node, undefined) || !same(a.scope?.iface, b.scope?.iface, undefined))
    return false;
  if (!same(a.protocol, b.protocol, 0) || !same(a.matchDscp, b.matchDscp, undefined)) return false;
  const meet = (x: [number, number], y: [number, number]) => x[0] <= y[1] && y[0] <= x[1];
  if (
    !meet(a.srcPorts ?? ANY_PORT, b.srcPorts ?? ANY_PORT) ||
    !meet(a.dstPorts ?? ANY_PORT, b.dstPorts ?? ANY_PORT)
  )
    return false;
  if (!prefixesMeet(pa.src, pb.src)) return false;
  // HTTP hosts resolve to addresses later: two rules naming the same host meet, as does a
  // host rule with a rule that does not restrict the destination.
  const hostsA = a.httpHosts.length > 0;
  const hostsB = b.httpHosts.length > 0;
  if (hostsA || hostsB) {
    if (hostsA && hostsB) return a.httpHosts.some((h) => b.httpHosts.includes(h));
    return (hostsA ? b : a).dstPrefixes.length === 0;
  }
  return prefixesMeet(pa.dst, pb.dst);
}
