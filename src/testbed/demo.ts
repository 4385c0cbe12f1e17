/**
 * `tacmesh demo`, single-node edition: one WAN node (a namespace) with a slice's virtual
 * switch (a bridge), three containers on it (namespaces joined by veth), an uplink to an
 * "external" network, continuous HTTP traffic inside the node and to the outside, and the
 * eBPF monitor on every bridge port and the uplink, shown live until Ctrl-C.
 */
import { runMonitor } from '../node/monitor/cli.js';
import { Lab } from './lab.js';
import { Tool, toolPath } from './tools/index.js';

export interface DemoOptions {
  duration?: number;
  json?: boolean;
}

function step(message: string): void {
  process.stderr.write(`[demo] ${message}\n`);
}

export async function runDemo(options: DemoOptions): Promise<void> {
  const lab = new Lab();
  step(`run ${lab.prefix}: building the topology in network namespaces ${lab.prefix}-*`);
  try {
    const node = await lab.netns('node');
    await lab.exec(node, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    const bridge = await lab.bridge(node, lab.ifname('br0'), '10.77.1.254/24');
    step(`node ${node}: slice switch ${bridge} 10.77.1.0/24`);

    const containers = [
      { name: 'web', addr: '10.77.1.10' },
      { name: 'api', addr: '10.77.1.11' },
      { name: 'client', addr: '10.77.1.20' },
    ];
    const ports: string[] = [];
    const nsOf = new Map<string, string>();
    for (const c of containers) {
      const ns = await lab.netns(c.name);
      nsOf.set(c.name, ns);
      const veth = await lab.veth(
        { netns: node, name: lab.ifname(`p${c.name}`) },
        { netns: ns, addr: `${c.addr}/24` },
      );
      await lab.enslave(node, veth.a, bridge);
      await lab.ip(ns, 'route', 'add', 'default', 'via', '10.77.1.254');
      ports.push(veth.a);
      step(`container ${c.name} ${c.addr} on bridge port ${veth.a}`);
    }
    const external = await lab.netns('ext');
    const uplink = await lab.veth(
      { netns: node, name: lab.ifname('up0'), addr: '10.77.99.1/24' },
      { netns: external, addr: '10.77.99.2/24' },
    );
    await lab.ip(external, 'route', 'add', '10.77.1.0/24', 'via', '10.77.99.1');
    step(`uplink ${uplink.a} to the external network 10.77.99.0/24`);

    const servers = [
      [nsOf.get('web') ?? '', '10.77.1.10'],
      [nsOf.get('api') ?? '', '10.77.1.11'],
      [external, '10.77.99.2'],
    ] as const;
    for (const [ns] of servers) {
      await new Tool(lab.spawnNode(ns, toolPath('http'), ['serve', '80'])).line('ready');
    }
    step('HTTP servers up on web, api and the external host');
    const client = nsOf.get('client') ?? '';
    const paths = ['/', '/index.html', '/api/v1/status', '/status/404', '/status/500', '/maps/tile/12/34'];
    lab.spawnNode(client, toolPath('http'), ['load', 'http://10.77.1.10', '4', ...paths]);
    lab.spawnNode(client, toolPath('http'), ['load', 'http://10.77.1.11', '3', ...paths]);
    lab.spawnNode(client, toolPath('http'), ['load', 'http://10.77.99.2', '2', '/', '/status/503', '/feed']);
    lab.spawnNode(nsOf.get('api') ?? '', toolPath('http'), [
      'load',
      'http://10.77.1.10',
      '2',
      '/internal/sync',
    ]);
    step('HTTP clients started: inside the node and to the external network');
    step(`monitor on ${[...ports, uplink.a].join(', ')}; Ctrl-C stops and removes everything`);
    await runMonitor({
      iface: [...ports, uplink.a],
      netns: node,
      node: 'node1',
      interval: 1000,
      sample: 1,
      l7: 'on',
      idleTimeout: 30_000,
      ...(options.json ? { json: true } : {}),
      ...(options.duration ? { duration: options.duration } : {}),
    });
  } finally {
    step('tearing down');
    await lab.cleanup();
    step('done: no namespace, link or process of this run is left');
  }
}
