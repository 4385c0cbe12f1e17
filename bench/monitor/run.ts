/**
 * bench/monitor: what watching a link costs, and what each monitor sees, in one run on one
 * namespace pair. Peers: no monitor (baseline), tacmesh (flowmon, tc/tcx eBPF), softflowd
 * and pmacctd (libpcap). Prints ratios to the baseline; absolute numbers are machine noise.
 *
 *   node --import tsx bench/monitor/run.ts [--rounds 3] [--seconds 5]
 */
import { parseArgs } from 'node:util';
import { Monitor } from '../../src/node/monitor/monitor.js';
import type { FlowRecord } from '../../src/node/monitor/records.js';
import { run } from '../../src/shared/exec.js';
import { requirePrograms } from '../../src/shared/programs.js';
import { Lab, stopChild } from '../../src/testbed/lab.js';
import { measureUserSide } from './user-side.js';

const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '5' } },
});
const ROUNDS = Number(args.rounds);
const SECONDS = Number(args.seconds);
const SERVER = '10.77.50.2';

type PeerName = 'none' | 'tacmesh' | 'softflowd' | 'pmacctd';
interface Peer {
  /** Packets this monitor counted for UDP to port 5201 (the flood), if it can tell. */
  udpPackets(): Promise<number | undefined>;
  stop(): Promise<void>;
}

requirePrograms(['iperf3', 'softflowd', 'softflowctl', 'pmacctd', 'pmacct'], 'the monitor benchmark');
const lab = new Lab();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startPeer(name: PeerName, ns: string, iface: string): Promise<Peer> {
  const tmp = `/tmp/${lab.prefix}-${name}`;
  if (name === 'none') return { udpPackets: async () => undefined, stop: async () => undefined };
  if (name === 'tacmesh') {
    const flows: FlowRecord[] = [];
    const monitor = await Monitor.start(
      { flows: (r) => flows.push(...r), http: () => undefined, stats: () => undefined },
      { interfaces: [iface], netns: ns, intervalMs: 1000 },
    );
    return {
      udpPackets: async () => {
        monitor.tick();
        return flows
          .filter((f) => f.protocol === 17 && f.dstPort === 5201 && f.direction === 'egress')
          .reduce((s, f) => s + f.packets, 0);
      },
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
    ]);
    await sleep(1000);
    return {
      udpPackets: async () => {
        const { stdout } = await run('softflowctl', ['-c', `${tmp}.ctl`, 'dump-flows']);
        // ACTIVE seq:2 [10.77.50.1]:43245 <> [10.77.50.2]:5201 proto:17 octets>:… packets>:19095 …
        let total = 0;
        for (const line of stdout.split('\n')) {
          if (!line.includes(`[${SERVER}]:5201 `) || !line.includes('proto:17')) continue;
          total += Number(/packets>:(\d+)/.exec(line)?.[1] ?? 0);
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
    udpPackets: async () => {
      const { stdout } = await run('pmacct', ['-p', `${tmp}.pipe`, '-s']);
      let total = 0;
      for (const line of stdout.split('\n')) {
        const cols = line.trim().split(/\s+/);
        // SRC_IP DST_IP SRC_PORT DST_PORT PROTOCOL PACKETS BYTES
        if (cols[3] === '5201' && cols[4] === 'udp') total += Number(cols[5]);
      }
      return total;
    },
    stop: () => stopChild(child),
  };
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

try {
  const a = await lab.netns('a', { ipv6: false });
  const b = await lab.netns('b', { ipv6: false });
  const veth = await lab.veth({ netns: a, addr: '10.77.50.1/24' }, { netns: b, addr: `${SERVER}/24` });
  await lab.staticNeighbours(
    { netns: a, iface: veth.a, ip: '10.77.50.1' },
    { netns: b, iface: veth.b, ip: SERVER },
  );
  const server = lab.spawn(b, 'iperf3', ['-s']);
  await sleep(500);

  const peers: PeerName[] = ['none', 'tacmesh', 'softflowd', 'pmacctd'];
  const tput = new Map<PeerName, number[]>(peers.map((p) => [p, []]));
  console.error(`TCP throughput, ${ROUNDS} rounds x ${SECONDS} s, peers interleaved`);
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of peers) {
      const peer = await startPeer(name, a, veth.a);
      try {
        const res = await iperf(a, []);
        tput.get(name)?.push((res.end.sum_received?.bits_per_second ?? 0) / 1e9);
      } finally {
        await peer.stop();
      }
      console.error(`  round ${r + 1} ${name}: ${tput.get(name)?.at(-1)?.toFixed(2)} Gbit/s`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
  const base = median(tput.get('none') ?? []);

  console.error('64-byte UDP flood, as fast as iperf3 sends');
  const flood = new Map<PeerName, { sent: number; counted: number | undefined }>();
  for (const name of peers) {
    const peer = await startPeer(name, a, veth.a);
    try {
      const res = await iperf(a, ['-u', '-b', '0', '-l', '64']);
      await sleep(3000); // let each monitor catch up with its buffers
      // A peer that cannot answer after the flood (pmacct's pipe has been seen to) counts as "-".
      const counted = await peer.udpPackets().catch((err: Error) => {
        console.error(`  ${name}: no count (${err.message.split('\n')[0]})`);
        return undefined;
      });
      flood.set(name, { sent: res.end.sum?.packets ?? 0, counted });
    } finally {
      await peer.stop();
    }
  }

  console.error('user side: CPU per million flow updates / HTTP events (one core)');
  const user = measureUserSide(200_000, 1_000_000);

  console.log('\nbench/monitor — same veth, same run');
  console.log('peer        TCP Gbit/s (median)  vs none   UDP-64 sent   counted    counted/sent');
  for (const name of peers) {
    const t = median(tput.get(name) ?? []);
    const f = flood.get(name);
    const counted = f?.counted;
    console.log(
      `${name.padEnd(11)} ${t.toFixed(2).padStart(19)}  ${(t / base).toFixed(3).padStart(7)}   ${String(f?.sent ?? '').padStart(11)}  ${String(counted ?? '-').padStart(9)}   ${counted === undefined ? '-' : (counted / (f?.sent ?? 1)).toFixed(4).padStart(12)}`,
    );
  }
  console.log(
    `\nuser side: ${user.flowCpuMsPerMillion.toFixed(0)} ms CPU per 1 M flow updates (${(1e6 / user.flowCpuMsPerMillion / 1000).toFixed(2)} M/s on one core), ` +
      `${user.httpCpuMsPerMillion.toFixed(0)} ms per 1 M HTTP events (${(1e6 / user.httpCpuMsPerMillion / 1000).toFixed(2)} M/s); ` +
      `${((user.flowCpuMsPerMillion / 1e6) * 1e5).toFixed(0)} ms CPU per second at 100k flow updates/s`,
  );
  await stopChild(server);
} finally {
  await lab.cleanup();
}
