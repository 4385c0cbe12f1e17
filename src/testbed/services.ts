/**
 * What the testbed's traffic is for, as the tower is told it: four services of the paper's
 * kinds, each with a precedence (docs/services.md), and the QoS policy that serves them
 * (docs/qos.md): a class per kind, rules by protocol and port, every radio link `auto` and
 * the closed loop on. traffic.ts makes the traffic these name.
 *
 * C2 states issue 19's intent (a guarantee between any two of its instances): the tower
 * compiles its rules onto the links of its paths, the relay's after a cut. The other
 * services' traffic is not between any two of their instances (a stream to one neighbour, a
 * transfer across one link, requests of clients no service declares), so the policy's
 * rules say by port what it is; their precedences name the same classes (PRECEDENCE_CLASS).
 */
import type { QosPolicySpec, QosRuleSpec } from '../tower/qos/model.js';
import type { ServiceSpec } from '../tower/services/model.js';
import type { TestbedConfig } from './config.js';
import { meshIfname, type TestbedPlan } from './plan.js';

/** Where each service listens on its members (slice ops: web, cli; svc: api, cam). */
export const PORTS = { web: 80, c2: 8080, sensor: 5004, bulk: 5001 } as const;
/** Linux's ephemeral ports: the clients' end of every connection, so no two rules overlap. */
const EPHEMERAL: [number, number] = [32768, 60999];
/**
 * C2's intent: at least this between any two nodes' C2 endpoints, each way. Its messages
 * are small (tens of kbit/s); the guarantees crossing one link (up to four directions) stay
 * within the flash class's 0.7 Mbit/s, so the tower need not raise it.
 */
export const C2_GUARANTEE_BPS = 100_000;
/** STAMP's reflector port (RFC 8762 §4; node.yaml mesh.probe.port) and Babel's (RFC 8966 §5). */
const STAMP_PORT = 862;
const BABEL_PORT = 6696;

export type ServiceName = keyof typeof PORTS;

const ip = (cidr: string) => cidr.split('/')[0] ?? '';

function member(plan: TestbedPlan, node: string, slice: 'ops' | 'svc', role: 'server' | 'client') {
  const s = plan.nodes.find((n) => n.name === node)?.slices.find((x) => x.name === slice);
  const m = s?.members.find((x) => x.role === role);
  if (!s || !m) throw new Error(`the plan has no ${role} in ${node}/${slice}`);
  return { node, slice: s.name, member: m.name, address: ip(m.address) };
}

/** The bulk transfer's two ends: across the first radio link, the one the story degrades. */
export function bulkEnds(plan: TestbedPlan): { from: string; to: string } {
  const l = plan.links[0];
  if (!l) throw new Error('the plan has no radio link');
  return { from: l.a, to: l.b };
}

export function testbedServices(plan: TestbedPlan, config: TestbedConfig): ServiceSpec[] {
  const everyNode = (
    slice: 'ops' | 'svc',
    port: number,
    protocol: ServiceSpec['instances'][number]['protocol'],
  ) => plan.nodes.map((n) => ({ ...member(plan, n.name, slice, 'server'), port, protocol }));
  const services: ServiceSpec[] = [
    {
      name: 'c2',
      precedence: 'flash',
      // Each node's C2 endpoint serves and sends messages (traffic.ts): peers, so its
      // instances are both ends of every message, as the intent's pairs are.
      instances: everyNode('ops', PORTS.c2, 'http'),
      objective: { targetP95Ms: 200, errorBudgetPct: 1 },
      guaranteeBps: C2_GUARANTEE_BPS,
    },
    { name: 'sensor', precedence: 'immediate', instances: everyNode('svc', PORTS.sensor, 'udp') },
    {
      name: 'web',
      precedence: 'routine',
      instances: [...everyNode('ops', PORTS.web, 'http'), ...everyNode('svc', PORTS.web, 'http')],
      // The web clients ask for 404s and 503s on purpose (a sixth of their requests).
      objective: { targetP95Ms: 500, errorBudgetPct: 25 },
    },
  ];
  if (config.traffic.bulk !== false) {
    const { to } = bulkEnds(plan);
    services.push({
      name: 'bulk',
      precedence: 'routine',
      instances: [{ ...member(plan, to, 'svc', 'server'), port: PORTS.bulk, protocol: 'tcp' }],
    });
  }
  return services;
}

const MBIT = 1_000_000;

/**
 * The policy: the mesh's probes (CS6) and routing first, then C2 (EF) with a guarantee (its
 * rules come from its intent), the sensor stream next (AF41) with room for its rate, web and
 * bulk below. On a radio that falls to 4 Mbit/s the guarantees still fit, and the closed
 * loop caps the classes below C2's at theirs.
 */
export function testbedQosPolicy(plan: TestbedPlan, config: TestbedConfig): QosPolicySpec {
  type Rule = Pick<QosRuleSpec, 'name' | 'class' | 'protocol' | 'srcPorts' | 'dstPorts'>;
  const both = (name: string, cls: string, port: number, protocol: number): Rule[] => [
    {
      name: `${name}-to`,
      class: cls,
      protocol,
      dstPorts: [port, port] as [number, number],
      srcPorts: EPHEMERAL,
    },
    {
      name: `${name}-from`,
      class: cls,
      protocol,
      srcPorts: [port, port] as [number, number],
      dstPorts: EPHEMERAL,
    },
  ];
  return {
    classes: [
      // The mesh's own traffic first: a radio link full of bulk is busy, not broken, only
      // while its probes and babeld's hellos still get through.
      { name: 'network', priority: 0, guaranteedBps: 0.1 * MBIT, ceilingBps: 0, dscp: 48 },
      { name: 'flash', priority: 0, guaranteedBps: 0.7 * MBIT, ceilingBps: 0, dscp: 46 },
      {
        name: 'immediate',
        priority: 1,
        guaranteedBps: Math.round(config.traffic.sensorKbit * 1000 * 1.2),
        ceilingBps: 0,
        dscp: 34,
      },
      { name: 'routine', priority: 3, guaranteedBps: 0.4 * MBIT, ceilingBps: 0, dscp: 0 },
      { name: 'bulk', priority: 6, guaranteedBps: 0.2 * MBIT, ceilingBps: 0, dscp: 8 },
    ],
    rules: (
      [
        {
          name: 'stamp-to',
          class: 'network',
          protocol: 17,
          dstPorts: [STAMP_PORT, STAMP_PORT],
          srcPorts: EPHEMERAL,
        },
        {
          name: 'stamp-from',
          class: 'network',
          protocol: 17,
          srcPorts: [STAMP_PORT, STAMP_PORT],
          dstPorts: EPHEMERAL,
        },
        { name: 'babel', class: 'network', protocol: 17, dstPorts: [BABEL_PORT, BABEL_PORT] },
        {
          name: 'sensor',
          class: 'immediate',
          protocol: 17,
          dstPorts: [PORTS.sensor, PORTS.sensor] as [number, number],
        },
        ...both('web', 'routine', PORTS.web, 6),
        ...both('bulk', 'bulk', PORTS.bulk, 6),
      ] as Rule[]
    ).map((r) => ({ srcPrefixes: [], dstPrefixes: [], httpHosts: [], ...r })),
    links: plan.links.flatMap((l) => [
      { node: l.a, iface: meshIfname(l.b), rateBps: 'auto' as const },
      { node: l.b, iface: meshIfname(l.a), rateBps: 'auto' as const },
    ]),
    auto: { enabled: true, congestedAt: 0.9, clearAt: 0.6, holdMs: 2000 },
  };
}
