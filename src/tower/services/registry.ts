/**
 * The tower's service registry: the services tower.yaml and the API declare, merged with the
 * ones each node declares in its hello. A declaration that contradicts another — the same
 * service at another precedence, or an address and port already another service's — is
 * refused with the reason; the tower's own set is refused whole, a node's service alone.
 */
import type { ServiceDeclaration__Output } from '../../proto/index.js';
import { towerLog } from '../../shared/log.js';
import { PRECEDENCE_CLASS, type ServiceInstanceSpec, ServiceSetSpec, ServiceSpec } from './model.js';

const log = towerLog.child({ stage: 'services' });

export type ServiceSource = 'tower' | { node: string };

export interface RegisteredService extends ServiceSpec {
  /** the QoS class of its precedence */
  qosClass: string;
  /** who declared it: "tower" and/or the nodes */
  declaredBy: string[];
}

export interface Refusal {
  source: string;
  service: string;
  reason: string;
}

const MAX_PER_NODE = 64;

const sourceName = (s: ServiceSource) => (s === 'tower' ? 'tower' : `node ${s.node}`);
const endpoint = (i: ServiceInstanceSpec) => `${i.address}:${i.port}/${i.protocol}`;

export class ServiceRegistry {
  private tower: ServiceSpec[] = [];
  private readonly fromNodes = new Map<string, ServiceSpec[]>();
  /** What the last node hellos had refused, by node. */
  private readonly nodeRefusals = new Map<string, Refusal[]>();
  private merged = new Map<string, RegisteredService>();

  constructor(declared: ServiceSpec[] = []) {
    const problem = this.setTower(declared);
    if (problem) throw new Error(`tower.yaml: services: ${problem}`);
  }

  /** Replaces the tower's own declarations; the reason if they contradict themselves or a node's. */
  setTower(input: unknown): string | undefined {
    const parsed = ServiceSetSpec.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return `${issue?.path.join('.') || '(top)'}: ${issue?.message}`;
    }
    const trial = new Map<string, RegisteredService>();
    for (const s of parsed.data) {
      const problem = add(trial, s, 'tower');
      if (problem) return problem;
    }
    for (const [node, services] of this.fromNodes)
      for (const s of services) {
        const problem = add(trial, s, { node });
        if (problem) return `${problem} (declared by node ${node}; change or remove one of the two)`;
      }
    this.tower = parsed.data;
    this.merged = trial;
    return undefined;
  }

  /**
   * A node's hello: its declarations (one instance each, on this node), each taken unless it
   * is malformed or contradicts what is registered.
   */
  setNode(node: string, declarations: ServiceDeclaration__Output[]): Refusal[] {
    this.fromNodes.delete(node);
    const trial = this.rebuild();
    const kept: ServiceSpec[] = [];
    const refused: Refusal[] = [];
    for (const d of declarations.slice(MAX_PER_NODE)) {
      refused.push({
        source: `node ${node}`,
        service: d.name,
        reason: `more than ${MAX_PER_NODE} services in one hello`,
      });
    }
    for (const d of declarations.slice(0, MAX_PER_NODE)) {
      const parsed = ServiceSpec.safeParse({
        name: d.name,
        precedence: d.precedence || undefined,
        instances: [
          {
            node,
            slice: d.slice || undefined,
            member: d.member || undefined,
            address: d.address,
            port: d.port,
            protocol: d.protocol || undefined,
          },
        ],
      });
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        refused.push({
          source: `node ${node}`,
          service: d.name.slice(0, 64),
          reason: `${issue?.path.join('.')}: ${issue?.message}`,
        });
        continue;
      }
      const s = parsed.data;
      const problem = add(trial, s, { node });
      if (problem) refused.push({ source: `node ${node}`, service: s.name, reason: problem });
      else kept.push(s);
    }
    for (const r of refused) log.warn(r, 'service declaration refused');
    this.fromNodes.set(node, kept);
    this.nodeRefusals.set(node, refused);
    this.merged = trial;
    return refused;
  }

  private rebuild(): Map<string, RegisteredService> {
    const m = new Map<string, RegisteredService>();
    for (const s of this.tower) add(m, s, 'tower');
    for (const [node, services] of this.fromNodes) for (const s of services) add(m, s, { node });
    return m;
  }

  /** What setTower would answer, and the services it would register, without changing anything. */
  check(input: unknown): { problem: string | undefined; services: RegisteredService[] } {
    const trial = new ServiceRegistry();
    for (const [node, services] of this.fromNodes) trial.fromNodes.set(node, services);
    const problem = trial.setTower(input);
    return { problem, services: problem ? [] : trial.services };
  }

  get towerDeclared(): ServiceSpec[] {
    return this.tower;
  }

  get services(): RegisteredService[] {
    return [...this.merged.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  get(name: string): RegisteredService | undefined {
    return this.merged.get(name);
  }

  get refusals(): Refusal[] {
    return [...this.nodeRefusals.values()].flat();
  }
}

/** Adds one declaration to `into`, or says why it cannot be (and leaves `into` unchanged). */
function add(into: Map<string, RegisteredService>, s: ServiceSpec, from: ServiceSource): string | undefined {
  const who = sourceName(from);
  for (const other of into.values()) {
    if (other.name === s.name) continue;
    for (const i of s.instances) {
      const clash = other.instances.find(
        (o) => i.port !== 0 && o.address === i.address && o.port === i.port && o.protocol === i.protocol,
      );
      if (clash)
        return `service "${s.name}" (${who}): ${endpoint(i)} is already an instance of service "${other.name}" (${other.declaredBy.join(', ')})`;
    }
  }
  const have = into.get(s.name);
  if (!have) {
    into.set(s.name, { ...s, qosClass: PRECEDENCE_CLASS[s.precedence], declaredBy: [who] });
    return undefined;
  }
  if (have.precedence !== s.precedence)
    return `service "${s.name}": ${who} declares precedence ${s.precedence}, ${have.declaredBy.join(', ')} declares ${have.precedence}`;
  if (s.objective && have.objective && JSON.stringify(s.objective) !== JSON.stringify(have.objective))
    return `service "${s.name}": ${who} declares another objective than ${have.declaredBy.join(', ')}`;
  if (s.guaranteeBps !== undefined && have.guaranteeBps !== undefined && s.guaranteeBps !== have.guaranteeBps)
    return `service "${s.name}": ${who} declares a guarantee of ${s.guaranteeBps} bit/s, ${have.declaredBy.join(', ')} ${have.guaranteeBps} bit/s`;
  const seen = new Set(have.instances.map(endpoint));
  into.set(s.name, {
    ...have,
    objective: have.objective ?? s.objective,
    guaranteeBps: have.guaranteeBps ?? s.guaranteeBps,
    instances: [...have.instances, ...s.instances.filter((i) => !seen.has(endpoint(i)))],
    declaredBy: [...have.declaredBy, who],
  });
  return undefined;
}
