/**
 * The testbed's traffic, process by process: for each service of services.ts its servers
 * and its clients, in the members' namespaces. `up` starts them all; the demo's scenario
 * turns a service's traffic off and on again (testbedTraffic).
 */
import type { TestbedConfig } from './config.js';
import type { TestbedPlan } from './plan.js';
import { bulkEnds, PORTS, type ServiceName } from './services.js';

export interface TrafficProcess {
  /** Its name among the testbed's processes (state.pids). */
  name: string;
  service: ServiceName;
  /** Where it runs: node, slice, member; null: the external network. */
  at: { node: string; slice: string; member: string } | null;
  tool: 'http' | 'udp' | 'bulk';
  args: string[];
  /** Not started by `up`: a scenario's `traffic: on` starts it (traffic.bulk "off"). */
  idle?: true;
}

const ip = (cidr: string) => cidr.split('/')[0] ?? '';

/**
 * The web clients' URLs: inside a slice, to the same slice of the next node, to the outside
 * (a VM client fetches them itself: node.yaml's `vm.fetch`).
 */
export function webUrls(plan: TestbedPlan, nodeIndex: number, sliceIndex: number): string[] {
  const here = plan.nodes[nodeIndex];
  const next = plan.nodes[(nodeIndex + 1) % plan.nodes.length];
  const host = (n: typeof here) => ip(n?.slices[sliceIndex]?.members[0]?.address ?? '');
  const paths = [
    '/',
    '/status',
    '/api/v1/track?id=7',
    '/maps/tile/12/3496/1591.png',
    '/status/404',
    '/orders/latest',
  ];
  return [
    ...paths.map((p) => `http://${host(here)}${p}`),
    ...paths.slice(0, 4).map((p) => `http://${host(next)}${p}`),
    `http://${plan.external.serverAddr}/feed`,
    `http://${plan.external.serverAddr}/status/503`,
  ];
}

export function trafficPlan(plan: TestbedPlan, config: TestbedConfig): TrafficProcess[] {
  const out: TrafficProcess[] = [
    { name: 'http-ext', service: 'web', at: null, tool: 'http', args: ['serve', String(PORTS.web)] },
  ];
  const n = plan.nodes.length;
  plan.nodes.forEach((node, i) => {
    const next = plan.nodes[(i + 1) % n];
    const [ops, svc] = node.slices;
    const [web, cli] = ops?.members ?? [];
    const [api, cam] = svc?.members ?? [];
    if (!ops || !svc || !web || !cli || !api || !cam || !next) return;
    const at = (slice: string, member: string) => ({ node: node.name, slice, member });
    const proc = (
      service: ServiceName,
      slice: string,
      member: string,
      tool: TrafficProcess['tool'],
      args: string[],
    ) =>
      out.push({
        name: `${service}-${node.name}-${slice}-${member}`,
        service,
        at: at(slice, member),
        tool,
        args,
      });
    // Web: a server in each slice (C2 on a second port of ops' server), a client in each;
    // a VM client (svc's camera, Fig. 11) runs its own, booted by the node's agent.
    proc('web', 'ops', web.name, 'http', ['serve', `${PORTS.web},${PORTS.c2}`]);
    proc('web', 'svc', api.name, 'http', ['serve', String(PORTS.web)]);
    proc('web', 'ops', cli.name, 'http', ['mix', String(config.rps), ...webUrls(plan, i, 0)]);
    if (cam.kind !== 'vm')
      proc('web', 'svc', cam.name, 'http', ['mix', String(config.rps), ...webUrls(plan, i, 1)]);
    // C2: small messages from each node's C2 endpoint (ops' server) to every other node's.
    const peers = plan.nodes.filter((p) => p.name !== node.name);
    proc('c2', 'ops', web.name, 'http', [
      'mix',
      String(config.traffic.c2Rps),
      ...peers.map(
        (p) => `http://${ip(p.slices[0]?.members[0]?.address ?? '')}:${PORTS.c2}/c2/msg?from=${node.name}`,
      ),
    ]);
    // The sensor stream: from each node's ops client (a container) to the next node's svc server.
    proc('sensor', 'svc', api.name, 'udp', ['sink', String(PORTS.sensor)]);
    proc('sensor', 'ops', cli.name, 'udp', [
      'stream',
      ip(next.slices[1]?.members[0]?.address ?? ''),
      String(PORTS.sensor),
      String(config.traffic.sensorKbit),
    ]);
  });
  if (config.traffic.bulk !== false) {
    const idle = config.traffic.bulk === 'off' ? { idle: true as const } : {};
    const { from, to } = bulkEnds(plan);
    const sliceOf = (name: string, k: number) => plan.nodes.find((x) => x.name === name)?.slices[k];
    const sink = sliceOf(to, 1)?.members[0];
    const sender = sliceOf(from, 0)?.members[1];
    if (sink && sender) {
      out.push({
        name: `bulk-${to}-svc-${sink.name}`,
        service: 'bulk',
        at: { node: to, slice: 'svc', member: sink.name },
        tool: 'bulk',
        args: ['sink', String(PORTS.bulk)],
        ...idle,
      });
      out.push({
        name: `bulk-${from}-ops-${sender.name}`,
        service: 'bulk',
        at: { node: from, slice: 'ops', member: sender.name },
        tool: 'bulk',
        args: ['send', ip(sink.address), String(PORTS.bulk)],
        ...idle,
      });
    }
  }
  return out;
}
