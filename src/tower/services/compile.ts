/**
 * QoS by service (docs/services.md): a service's intent — its precedence's class and
 * `guaranteeBps` between any two of its instances — compiled into QoS rules on every link
 * of the mesh paths between them. For each ordered pair (a, b) where b serves a port, two
 * directions: a → b to b's port along a.node's path to b, and b's answers back along
 * b.node's path to a; on each hop but the last a rule scoped to that node and its egress
 * interface, into the class. A link the operator's policy does not name is added as an
 * `auto` link (built at the radio's rate from its mesh reports), and each class's guarantee
 * is raised to the largest sum of guarantees crossing one of its links. Pure: the paths come in.
 */
import { QOS_MAX_RULES } from '../../bpf/types.js';
import type { TracedPath } from '../api/mesh-paths.js';
import type { IntentFlow } from '../api/services-types.js';
import type { QosLinkSpec, QosPolicySpec, QosRuleSpec } from '../qos/model.js';
import { validatePolicy } from '../qos/validate.js';
import type { ServiceInstanceSpec } from './model.js';
import type { RegisteredService } from './registry.js';

/** The path from `from` (a node) to the node `to` holding `address`. */
export type TraceTo = (from: string, to: string, address: string) => TracedPath;

/** One direction between two instances, and the links it was compiled on. */
export interface CompiledFlow extends IntentFlow {
  service: string;
  links: { node: string; iface: string }[];
}

export interface CompiledServices {
  /** Scoped rules, placed before the operator's: the first match wins. */
  rules: QosRuleSpec[];
  /** Links on the paths that the operator's policy does not name. */
  links: QosLinkSpec[];
  /** Per class, the largest sum of guarantees crossing one link (bit/s). */
  guarantees: Record<string, number>;
  /** Per "node/iface/class", the sum of the guarantees crossing it. */
  linkGuarantees: Record<string, number>;
  flows: CompiledFlow[];
  /** Services that could not be compiled, with the reason. */
  problems: { service: string; reason: string }[];
}

const PROTOCOL: Record<ServiceInstanceSpec['protocol'], number> = { http: 6, tcp: 6, udp: 17 };

export const linkKey = (node: string, iface: string, cls: string) => `${node}/${iface}/${cls}`;

export function compileServices(
  services: RegisteredService[],
  policy: QosPolicySpec,
  trace: TraceTo,
): CompiledServices {
  const out: CompiledServices = {
    rules: [],
    links: [],
    guarantees: {},
    linkGuarantees: {},
    flows: [],
    problems: [],
  };
  out.problems = classProblems(services, policy);
  const named = new Set(policy.links.map((l) => `${l.node}/${l.iface}`));
  for (const s of services) {
    if (s.guaranteeBps === undefined || out.problems.some((p) => p.service === s.name)) continue;
    for (const a of s.instances)
      for (const b of s.instances) {
        if (a === b || b.port === 0) continue;
        const port: [number, number] = [b.port, b.port];
        const protocol = PROTOCOL[b.protocol];
        const directions = [
          {
            src: a,
            dst: b,
            rule: { srcPrefixes: [`${a.address}/32`], dstPrefixes: [`${b.address}/32`], dstPorts: port },
            name: `${a.address}>${b.address}:${b.port}`,
          },
          {
            src: b,
            dst: a,
            rule: { srcPrefixes: [`${b.address}/32`], dstPrefixes: [`${a.address}/32`], srcPorts: port },
            name: `${b.address}:${b.port}>${a.address}`,
          },
        ];
        for (const d of directions) {
          const flow: CompiledFlow = {
            service: s.name,
            from: d.src.address,
            to: d.dst.address,
            hops: [d.src.node],
            status: 'local',
            links: [],
          };
          out.flows.push(flow);
          if (d.src.node === d.dst.node) continue;
          const path = trace(d.src.node, d.dst.node, d.dst.address);
          flow.hops = path.hops;
          flow.status = path.status;
          if (path.status !== 'ok') continue;
          path.egress.forEach((iface, i) => {
            const node = path.hops[i] ?? '';
            flow.links.push({ node, iface });
            out.rules.push({
              name: `svc:${s.name}:${d.name}`,
              class: s.qosClass,
              httpHosts: [],
              protocol,
              ...d.rule,
              scope: { node, iface },
            });
            const key = linkKey(node, iface, s.qosClass);
            out.linkGuarantees[key] = (out.linkGuarantees[key] ?? 0) + (s.guaranteeBps ?? 0);
            out.guarantees[s.qosClass] = Math.max(out.guarantees[s.qosClass] ?? 0, out.linkGuarantees[key]);
            if (!named.has(`${node}/${iface}`)) {
              named.add(`${node}/${iface}`);
              out.links.push({ node, iface, rateBps: 'auto' });
            }
          });
        }
      }
  }
  return out;
}

/** Services with a guarantee whose precedence names a class the operator's policy lacks. */
export function classProblems(
  services: RegisteredService[],
  policy: QosPolicySpec,
): { service: string; reason: string }[] {
  const classes = new Set(policy.classes.map((c) => c.name));
  return services
    .filter((s) => s.guaranteeBps !== undefined && !classes.has(s.qosClass))
    .map((s) => ({
      service: s.name,
      reason: `service "${s.name}": its guarantee needs QoS class "${s.qosClass}" (precedence ${s.precedence}), which the QoS policy does not define`,
    }));
}

/**
 * The policy the nodes get: the operator's, with the services' links added, each class's
 * guarantee raised to what the services need, and the services' rules first (a rule whose
 * class the operator has since removed is left out).
 */
export function withServices(policy: QosPolicySpec, compiled: CompiledServices | undefined): QosPolicySpec {
  if (!compiled) return policy;
  const classes = new Set(policy.classes.map((c) => c.name));
  const named = new Set(policy.links.map((l) => `${l.node}/${l.iface}`));
  return {
    ...policy,
    classes: policy.classes.map((c) => ({
      ...c,
      guaranteedBps: Math.max(c.guaranteedBps, compiled.guarantees[c.name] ?? 0),
    })),
    rules: [...compiled.rules.filter((r) => classes.has(r.class)), ...policy.rules],
    links: [...policy.links, ...compiled.links.filter((l) => !named.has(`${l.node}/${l.iface}`))],
  };
}

/**
 * What stops the combined policy: raised guarantees above a link's rate or a class's
 * ceiling, or more rules on a node than its tables hold. (The services' rules are not
 * checked for overlap with the operator's: they come first on purpose.)
 */
export function checkWithServices(policy: QosPolicySpec, compiled: CompiledServices): string[] {
  const merged = withServices(policy, compiled);
  const v = validatePolicy({ ...policy, classes: merged.classes, links: merged.links });
  const errors = v.ok ? [] : v.errors;
  const nodes = new Set(compiled.rules.map((r) => r.scope?.node ?? ''));
  for (const node of nodes) {
    const count = merged.rules.filter((r) => !r.scope?.node || r.scope.node === node).length;
    if (count > QOS_MAX_RULES)
      errors.push(
        `node ${node}: the services' rules and the policy's add up to ${count}, above ${QOS_MAX_RULES}`,
      );
  }
  return errors;
}
