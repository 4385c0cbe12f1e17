/**
 * The testbed's topology, computed from its config before anything is made: nodes with
 * positions, slices and members; mesh links with addresses; the management network; the
 * external network. Addresses are all in 10.77.0.0/16:
 *   slices       10.77.(10i+1).0/24 (ops), 10.77.(10i+2).0/24 (svc) of node i
 *   mesh links   10.77.200.0/22, a /30 each
 *   management   10.77.240.0/24 (node i .i, tower .254)
 *   external     10.77.99.0/24 (servers), reached via node n1 over 10.77.98.0/30
 *   host↔tower   10.77.255.0/30
 *   headquarters (the diode, docs/testbed.md): tower↔diode sender 10.77.97.0/30, the one-way
 *                link 10.77.96.0/30, the HQ network 10.77.95.0/24 (the collector .10)
 */
import type { TestbedConfig } from './config.js';

export interface MemberPlan {
  name: string;
  address: string;
  role: 'server' | 'client';
  /** One member of each node is a VM (a QEMU microvm on a tap), the others containers (Fig. 11). */
  kind: 'container' | 'vm';
}

export interface SlicePlan {
  name: string;
  gateway: string;
  subnet: string;
  members: MemberPlan[];
}

export interface NodePlan {
  name: string;
  index: number;
  position: { lat: number; lon: number };
  mgmtAddress: string;
  slices: SlicePlan[];
}

export interface LinkPlan {
  a: string;
  b: string;
  /** Interface names inside each node's namespace. */
  ifA: string;
  ifB: string;
  addrA: string;
  addrB: string;
}

export interface TestbedPlan {
  nodes: NodePlan[];
  links: LinkPlan[];
  towerMgmt: string;
  external: {
    gatewayNode: string;
    linkNodeAddr: string;
    linkExtAddr: string;
    serverAddr: string;
    subnet: string;
  };
  host: { hostAddr: string; towerAddr: string };
  hq: {
    /** The tower's and the diode sender's ends of the veth between them. */
    towerAddr: string;
    senderAddr: string;
    /** The one-way link: the sender's end, HQ's end. */
    linkSendAddr: string;
    linkRecvAddr: string;
    subnet: string;
    collectorAddr: string;
  };
}

const KM_PER_DEG_LAT = 111.32;

export function meshIfname(peer: string): string {
  return `mesh-${peer}`;
}

export function planTestbed(config: TestbedConfig): TestbedPlan {
  const n = config.nodes;
  const nodes: NodePlan[] = [];
  for (let i = 1; i <= n; i++) {
    const name = `n${i}`;
    const angle = (2 * Math.PI * (i - 1)) / n;
    const dLat = (config.radiusKm * Math.cos(angle)) / KM_PER_DEG_LAT;
    const dLon =
      (config.radiusKm * Math.sin(angle)) / (KM_PER_DEG_LAT * Math.cos((config.center.lat * Math.PI) / 180));
    const position = config.positions[name] ?? {
      lat: Math.round((config.center.lat + dLat) * 1e4) / 1e4,
      lon: Math.round((config.center.lon + dLon) * 1e4) / 1e4,
    };
    const slice = (
      k: number,
      sliceName: string,
      server: string,
      client: string,
      clientKind: MemberPlan['kind'] = 'container',
    ): SlicePlan => {
      const net = `10.77.${10 * i + k}`;
      return {
        name: sliceName,
        gateway: `${net}.1/24`,
        subnet: `${net}.0/24`,
        members: [
          { name: server, address: `${net}.10/24`, role: 'server', kind: 'container' },
          { name: client, address: `${net}.20/24`, role: 'client', kind: clientKind },
        ],
      };
    };
    nodes.push({
      name,
      index: i,
      position,
      mgmtAddress: `10.77.240.${i}/24`,
      slices: [slice(1, 'ops', 'web', 'cli'), slice(2, 'svc', 'api', 'cam', 'vm')],
    });
  }
  const names = new Set(nodes.map((x) => x.name));
  const pairs: [string, string][] = [];
  const addPair = (a: string, b: string) => {
    if (!names.has(a) || !names.has(b))
      throw new Error(`extraLinks: ${a}-${b} names a node the testbed does not have`);
    if (a === b) throw new Error(`extraLinks: ${a}-${b} links a node to itself`);
    if (!pairs.some(([x, y]) => (x === a && y === b) || (x === b && y === a))) pairs.push([a, b]);
  };
  for (let i = 1; i <= n; i++) if (n > 2 || i < n) addPair(`n${i}`, `n${(i % n) + 1}`);
  // The chord gives n1 and n2 a second path through a relay (n3) when their own link is cut.
  if (n >= 4) addPair('n1', 'n3');
  for (const [a, b] of config.extraLinks) addPair(a, b);
  const links = pairs.map(([a, b], k) => {
    const base = 4 * k;
    const third = 200 + Math.floor(base / 256);
    return {
      a,
      b,
      ifA: meshIfname(b),
      ifB: meshIfname(a),
      addrA: `10.77.${third}.${(base % 256) + 1}/30`,
      addrB: `10.77.${third}.${(base % 256) + 2}/30`,
    };
  });
  return {
    nodes,
    links,
    towerMgmt: '10.77.240.254',
    external: {
      gatewayNode: 'n1',
      linkNodeAddr: '10.77.98.1/30',
      linkExtAddr: '10.77.98.2/30',
      serverAddr: '10.77.99.10',
      subnet: '10.77.99.0/24',
    },
    host: { hostAddr: '10.77.255.1/30', towerAddr: '10.77.255.2' },
    hq: {
      towerAddr: '10.77.97.1',
      senderAddr: '10.77.97.2',
      linkSendAddr: '10.77.96.1',
      linkRecvAddr: '10.77.96.2',
      subnet: '10.77.95.0/24',
      collectorAddr: '10.77.95.10',
    },
  };
}
