/**
 * bench/monitor: what watching a link costs per packet, and what each monitor counts, in one
 * run on one namespace pair. Peers: tacmesh (flowmon, tc/tcx eBPF), softflowd and pmacctd
 * (libpcap). Traffic: a 64-byte UDP flood, TCP bulk, an HTTP mix (one connection per request).
 *
 * Cost per packet:
 * - tacmesh: the eBPF programs' own run time from the kernel's bpf_stats (run_time_ns /
 *   run_cnt, `kernel.bpf_stats_enabled=1` only while tacmesh runs, off again in a finally),
 *   plus the CPU time of the monitor's process (this one; /proc/self/stat utime+stime);
 * - softflowd, pmacctd: the CPU time of their process tree (/proc/<pid>/stat utime+stime).
 *   What libpcap costs in the kernel (the packet socket's copy into its ring) runs in the
 *   sender's softirq and is charged to no monitor: their numbers are a lower bound.
 * Both per packet the monitor counted. TCP throughput with and without each monitor is kept
 * as information (veth TCP on 2 shared cores moves by a few percent from run to run).
 *
 *   node --import tsx bench/monitor/run.ts [--seconds 4] [--rounds 1] [--kinds udp,tcp,http]
 *     [--peers tacmesh,softflowd,pmacctd] [--no-throughput] [--no-user-side]
 *     [--object bpf/.output/flowmon.bpf.o] [--before <an older flowmon.bpf.o>]
 *
 * --before adds a peer "before": tacmesh with that object, run beside the others, for a
 * before/after table from one run.
 */
import { parseArgs } from 'node:util';
import { Lab, stopChild } from '../../src/netlab/lab.js';
import { Monitor } from '../../src/node/monitor/monitor.js';
import type { FlowRecord } from '../../src/node/monitor/records.js';
import { run } from '../../src/shared/exec.js';
import { requirePrograms } from '../../src/shared/programs.js';
import { treeCpuNs } from '../../test/support/proc-stat.js';
import { Tool, toolPath } from '../../test/support/tools/index.js';
import { measureUserSide } from './user-side.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '4' },
    kinds: { type: 'string', default: 'udp,tcp,http' },
    peers: { type: 'string', default: 'tacmesh,softflowd,pmacctd' },
    'no-throughput': { type: 'boolean', default: false },
    'no-user-side': { type: 'boolean', default: false },
    object: { type: 'string' },
    before: { type: 'string' },
  },
});
const ROUNDS = Number(args.rounds);
const SECONDS = Number(args.seconds);
const CLIENT = '10.77.50.1';
const SERVER = '10.77.50.2';
const HTTP_PORT = 8080;
const HTTP_REQUESTS = 1000 * SECONDS;

type PeerName = 'before' | 'tacmesh' | 'softflowd' | 'pmacctd';
type Kind = 'udp' | 'tcp' | 'http';
const KINDS = args.kinds.split(',') as Kind[];
const PEERS = [...(args.before ? ['before'] : []), ...args.peers.split(',')] as PeerName[];

/** The traffic of a kind, as a monitor's flow entry shows it. */
interface FlowView {
  protocol: number;
  srcPort: number;
  dstPort: number;
  /** Direction as seen on the client's veth end; undefined: the monitor cannot tell. */
  egress: boolean | undefined;
}
function ofKind(kind: Kind, f: FlowView): boolean {
  if (kind === 'udp') return f.protocol === 17 && f.dstPort === 5201 && f.egress !== false;
  const port = kind === 'tcp' ? 5201 : HTTP_PORT;
  return f.protocol === 6 && (f.srcPort === port || f.dstPort === port);
}

interface Peer {
  /** The CPU time of the monitor's processes so far, ns. */
  cpuNs(): number;
  /** Packets this monitor counted for the traffic of `kind`. */
  counted(kind: Kind): Promise<number | undefined>;
  /** tacmesh: the programs' kernel run time and runs so far. */
  kernel?(): Promise<{ ns: number; runs: number }[]>;
  /** tacmesh: HTTP requests and responses seen. */
  httpSeen?(): number;
  stop(): Promise<void>;
}

requirePrograms(
  ['iperf3', 'softflowd', 'softflowctl', 'pmacctd', 'pmacct', 'bpftool'],
  'the monitor benchmark',
);
const lab = new Lab();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function progStats(ids: number[]): Promise<{ ns: number; runs: number }[]> {
  return Promise.all(
    ids.map(async (id) => {
      const { stdout } = await run('bpftool', ['-j', 'prog', 'show', 'id', `${id}`]);
      const p = JSON.parse(stdout) as { run_time_ns?: number; run_cnt?: number };
      return { ns: p.run_time_ns ?? 0, runs: p.run_cnt ?? 0 };
    }),
  );
}

async function startPeer(name: PeerName, ns: string, iface: string): Promise<Peer> {
  const tmp = `/tmp/${lab.prefix}-${name}`;
  if (name === 'tacmesh' || name === 'before') {
    const object = name === 'before' ? args.before : args.object;
    const flows: FlowRecord[] = [];
    let http = 0;
    const monitor = await Monitor.start(
      { flows: (r) => flows.push(...r), http: () => void http++, stats: () => undefined },
      {
        interfaces: [iface],
        netns: ns,
        intervalMs: 1000,
        ...(object ? { objectPath: object } : {}),
      },
    );
    const ids = ['flowmon_egress', 'flowmon_ingress'].map((p) => monitor.flowmon.obj.program(p).id);
    return {
      // this process alone: the traffic tools and the other peers are its children
      cpuNs: () => treeCpuNs(process.pid, false),
      counted: async (kind) => {
        monitor.tick();
        return flows
          .filter((f) => ofKind(kind, { ...f, egress: f.direction === 'egress' }))
          .reduce((s, f) => s + f.packets, 0);
      },
      kernel: () => progStats(ids),
      httpSeen: () => http,
      stop: async () => monitor.stop(),
    };
  }
  if (name === 'softflowd') {
    // -C 128 -B 16M: without them softflowd drops GSO packets and under-counts.
    const child = lab.spawn(ns, 'softflowd', [
      '-d',
      '-i',
      iface,
      '-C',
      '128',
      '-B',
      '16777216',
      '-n',
      '127.0.0.1:2055',
      '-c',
      `${tmp}.ctl`,
      '-p',
      `${tmp}.pid`,
      '-m',
      '65536',
      // no expiry during a case: an expired flow leaves dump-flows, and its packets with it
      ...['general', 'tcp', 'tcp.rst', 'tcp.fin', 'udp', 'maxlife'].flatMap((t) => ['-t', `${t}=3600`]),
    ]);
    await sleep(1000);
    return {
      cpuNs: () => treeCpuNs(child.pid ?? 0),
      counted: async (kind) => {
        const { stdout } = await run('softflowctl', ['-c', `${tmp}.ctl`, 'dump-flows']);
        // ACTIVE seq:2 [10.77.50.1]:43245 <> [10.77.50.2]:5201 proto:17 octets>:… packets>:19095 … packets<:0 …
        let total = 0;
        for (const line of stdout.split('\n')) {
          const m = /\]:(\d+) <> \[[^\]]+\]:(\d+) proto:(\d+)/.exec(line);
          if (!m) continue;
          const view = { srcPort: Number(m[1]), dstPort: Number(m[2]), protocol: Number(m[3]) };
          const out = Number(/packets>:(\d+)/.exec(line)?.[1] ?? 0);
          const back = Number(/packets<:(\d+)/.exec(line)?.[1] ?? 0);
          // a bidirectional entry: either side may be the server's port
          if (ofKind(kind, { ...view, egress: undefined })) total += kind === 'udp' ? out : out + back;
          else if (ofKind(kind, { ...view, srcPort: view.dstPort, dstPort: view.srcPort, egress: undefined }))
            total += kind === 'udp' ? back : out + back;
        }
        return total;
      },
      stop: () => stopChild(child),
    };
  }
  const child = lab.spawn(ns, 'pmacctd', [
    '-i',
    iface,
    '-P',
    'memory',
    '-p',
    `${tmp}.pipe`,
    '-c',
    'src_host,dst_host,src_port,dst_port,proto',
  ]);
  await sleep(1500);
  return {
    cpuNs: () => treeCpuNs(child.pid ?? 0),
    counted: async (kind) => {
      const { stdout } = await run('pmacct', ['-p', `${tmp}.pipe`, '-s'], { timeoutMs: 10_000 });
      let total = 0;
      for (const line of stdout.split('\n')) {
        // SRC_IP DST_IP SRC_PORT DST_PORT PROTOCOL PACKETS BYTES
        const c = line.trim().split(/\s+/);
        const protocol = c[4] === 'udp' ? 17 : c[4] === 'tcp' ? 6 : -1;
        const view = { srcPort: Number(c[2]), dstPort: Number(c[3]), protocol, egress: c[0] === CLIENT };
        if (ofKind(kind, view)) total += Number(c[5]);
      }
      return total;
    },
    stop: () => stopChild(child),
  };
}

/** TCP segments both namespaces sent (the kernel's own count, as the monitor test uses). */
async function tcpSegments(namespaces: string[]): Promise<number> {
  let total = 0;
  for (const ns of namespaces) {
    const { stdout } = await lab.exec(ns, 'cat', ['/proc/net/snmp']);
    const lines = stdout.split('\n').filter((l) => l.startsWith('Tcp:'));
    const names = (lines[0] ?? '').split(/\s+/);
    const values = (lines[1] ?? '').split(/\s+/);
    total += Number(values[names.indexOf('OutSegs')]) + Number(values[names.indexOf('RetransSegs')]);
  }
  return total;
}

/** The parts of iperf3's JSON report this bench reads. */
interface IperfReport {
  end: { sum_received?: { bits_per_second: number }; sum?: { packets: number } };
}

async function iperf(ns: string, extra: string[]): Promise<IperfReport> {
  const { stdout } = await lab.exec(ns, 'iperf3', ['-c', SERVER, '-t', `${SECONDS}`, '-J', ...extra], {
    timeoutMs: (SECONDS + 30) * 1000,
  });
  return JSON.parse(stdout) as IperfReport;
}

const HTTP_PATHS = ['/', '/status/404', '/api/v1/items?id=42', '/status/500', '/static/app.js'];

interface Cost {
  sent: number;
  counted: number | undefined;
  /** CPU ns per counted packet: process, and (tacmesh) the programs in the kernel. */
  userNs: number;
  kernelNs: number;
  /** tacmesh: ns per program run, egress and ingress, and runs per counted packet. */
  perRun?: number[];
  runsPerPacket?: number;
  httpSeen?: number;
}

async function setBpfStats(on: boolean): Promise<void> {
  await run('sysctl', ['-q', '-w', `kernel.bpf_stats_enabled=${on ? 1 : 0}`]);
}

try {
  const a = await lab.netns('a', { ipv6: false });
  const b = await lab.netns('b', { ipv6: false });
  const veth = await lab.veth({ netns: a, addr: `${CLIENT}/24` }, { netns: b, addr: `${SERVER}/24` });
  await lab.staticNeighbours(
    { netns: a, iface: veth.a, ip: CLIENT },
    { netns: b, iface: veth.b, ip: SERVER },
  );
  const server = lab.spawn(b, 'iperf3', ['-s']);
  await new Tool(lab.spawnNode(b, toolPath('http'), ['serve', `${HTTP_PORT}`])).line('ready');
  await sleep(500);

  async function traffic(kind: Kind): Promise<number> {
    if (kind === 'udp') return (await iperf(a, ['-u', '-b', '0', '-l', '64'])).end.sum?.packets ?? 0;
    const before = await tcpSegments([a, b]);
    if (kind === 'tcp') await iperf(a, []);
    else {
      const paths = Array.from(
        { length: HTTP_REQUESTS },
        (_, i) => HTTP_PATHS[i % HTTP_PATHS.length] as string,
      );
      await new Tool(
        lab.spawnNode(a, toolPath('http'), ['get', `http://${SERVER}:${HTTP_PORT}`, ...paths]),
      ).result();
    }
    return (await tcpSegments([a, b])) - before;
  }

  const costs = new Map<string, Cost>();
  for (const kind of KINDS) {
    for (const name of PEERS) {
      console.error(`  ${kind} with ${name}`);
      const peer = await startPeer(name, a, veth.a);
      try {
        if (peer.kernel) await setBpfStats(true);
        try {
          await sleep(200);
          const k0 = (await peer.kernel?.()) ?? [];
          const cpu0 = peer.cpuNs();
          const sent = await traffic(kind);
          await sleep(2000); // let each monitor catch up with its buffers
          // A peer that cannot answer after the flood (pmacct's pipe has been seen to) counts as "-".
          const counted = await peer.counted(kind).catch((err: Error) => {
            console.error(`  ${name}: no count (${err.message.split('\n')[0]})`);
            return undefined;
          });
          const cpu = peer.cpuNs() - cpu0;
          const k1 = (await peer.kernel?.()) ?? [];
          const d = k1.map((x, i) => ({ ns: x.ns - (k0[i]?.ns ?? 0), runs: x.runs - (k0[i]?.runs ?? 0) }));
          const kernelNs = d.reduce((s, x) => s + x.ns, 0);
          const runs = d.reduce((s, x) => s + x.runs, 0);
          const per = counted || 1;
          const cost: Cost = { sent, counted, userNs: cpu / per, kernelNs: kernelNs / per };
          if (peer.kernel) {
            cost.perRun = d.map((x) => x.ns / (x.runs || 1));
            cost.runsPerPacket = runs / per;
          }
          if (peer.httpSeen) cost.httpSeen = peer.httpSeen();
          costs.set(`${kind}/${name}`, cost);
        } finally {
          if (peer.kernel) await setBpfStats(false);
        }
      } finally {
        await peer.stop();
      }
    }
  }

  const tput = new Map<string, number[]>();
  if (!args['no-throughput']) {
    console.error(`TCP throughput, ${ROUNDS} round(s) x ${SECONDS} s, peers interleaved (information)`);
    for (let r = 0; r < ROUNDS; r++) {
      for (const name of ['none', ...PEERS] as const) {
        const peer = name === 'none' ? undefined : await startPeer(name, a, veth.a);
        try {
          const res = await iperf(a, []);
          tput.set(name, [...(tput.get(name) ?? []), (res.end.sum_received?.bits_per_second ?? 0) / 1e9]);
        } finally {
          await peer?.stop();
        }
      }
    }
  }

  console.error('user side: CPU per million flow updates / HTTP events (one core)');
  const user = args['no-user-side'] ? undefined : measureUserSide(200_000, 1_000_000);

  const fmt = (x: number | undefined, digits = 0) => (x === undefined ? '-' : x.toFixed(digits));
  const kindNames: Record<Kind, string> = {
    udp: 'UDP 64 B flood',
    tcp: 'TCP bulk',
    http: `HTTP mix (${HTTP_REQUESTS} req)`,
  };
  console.log(
    '\nbench/monitor — cost per packet, same veth, same run: ns of CPU per packet the monitor counted, and per packet sent' +
      '\n(libpcap peers count a GSO packet once; "vs tacmesh" compares CPU per packet sent)',
  );
  console.log(
    'traffic               peer        kernel ns/pkt  process ns/pkt  total ns/pkt  ns/sent pkt  vs tacmesh   counted / sent',
  );
  for (const kind of KINDS) {
    const ours = costs.get(`${kind}/tacmesh`);
    const perSent = (c: Cost) => ((c.kernelNs + c.userNs) * (c.counted || 1)) / (c.sent || 1);
    const oursTotal = ours ? perSent(ours) : undefined;
    for (const name of PEERS) {
      const c = costs.get(`${kind}/${name}`);
      if (!c) continue;
      const total = c.kernelNs + c.userNs;
      const ratio = oursTotal && c.counted !== undefined ? (perSent(c) / oursTotal).toFixed(2) : '-';
      const counted =
        c.counted === undefined ? '-' : `${c.counted} / ${c.sent} (${(c.counted / c.sent).toFixed(4)})`;
      console.log(
        `${kindNames[kind].padEnd(21)} ${name.padEnd(11)} ${(c.perRun ? fmt(c.kernelNs) : '-').padStart(13)}  ${(c.counted === undefined ? '-' : fmt(c.userNs)).padStart(14)}  ${(c.counted === undefined ? '-' : fmt(total)).padStart(12)}  ${(c.counted === undefined ? '-' : fmt(perSent(c))).padStart(11)}  ${ratio.padStart(10)}   ${counted}`,
      );
    }
  }
  console.log('\ntacmesh in the kernel (bpf_stats): ns per program run, runs per packet counted');
  for (const kind of KINDS) {
    for (const name of PEERS) {
      const c = costs.get(`${kind}/${name}`);
      if (!c?.perRun) continue;
      console.log(
        `${kindNames[kind].padEnd(21)} ${name.padEnd(8)} egress ${fmt(c.perRun[0]).padStart(4)} ns/run, ingress ${fmt(c.perRun[1]).padStart(4)} ns/run, ${fmt(c.runsPerPacket, 3)} runs/packet${kind === 'http' ? `, HTTP events ${c.httpSeen} for ${2 * HTTP_REQUESTS} requests + responses` : ''}`,
      );
    }
  }
  if (tput.size) {
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
    const base = median(tput.get('none') ?? []);
    console.log('\nTCP throughput (information; within the machine noise)');
    for (const [name, xs] of tput)
      console.log(
        `${name.padEnd(11)} ${median(xs).toFixed(2).padStart(6)} Gbit/s  ${(median(xs) / base).toFixed(3)}`,
      );
  }
  if (user)
    console.log(
      `\nuser side: ${user.flowCpuMsPerMillion.toFixed(0)} ms CPU per 1 M flow updates (${(1e3 / user.flowCpuMsPerMillion).toFixed(2)} M/s on one core), ` +
        `${user.httpCpuMsPerMillion.toFixed(0)} ms per 1 M HTTP events (${(1e3 / user.httpCpuMsPerMillion).toFixed(2)} M/s)`,
    );
  await stopChild(server);
} finally {
  await setBpfStats(false).catch(() => undefined);
  await lab.cleanup();
}
