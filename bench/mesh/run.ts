/**
 * bench/mesh: what measuring the mesh costs and how right it is, beside irtt (Debian's
 * isochronous round-trip tester) measuring the same link in the same run.
 *
 *   1. A radio link of two namespaces through the testbed's air (its forwarder adds
 *      --delay ms each way; linkem drops --loss % at each end's ingress):
 *      - cost: the bytes per second one probe session at 5/s puts on the link, each way,
 *        as a share of a 20 Mbit/s radio link (target ≤ 0.1 %), tacmesh's STAMP vs irtt at
 *        the same rate;
 *      - accuracy: each tool alone for --seconds: its median RTT against the configured
 *        2 × delay (and ping's through the same air), its loss each way against the
 *        configured loss and against what linkem counted dropping of that tool's packets.
 *   2. The testbed (4 nodes, babeld): time from a cut of n1–n2 to tacmesh calling the link
 *      down (at the node, and at the tower) against babeld's own route change at n1 — a cut
 *      the radio reports (DLEP Destination Down), and a silent one (100 % loss: the probes
 *      alone can tell).
 *
 *   node --import tsx bench/mesh/run.ts [--seconds 30] [--delay 5] [--loss 5] [--rounds 1] [--only link|cuts]
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Lab } from '../../src/netlab/lab.js';
import { LinkEmulator } from '../../src/netlab/linkem.js';
import type { LinkReport } from '../../src/node/mesh/stage.js';
import { run } from '../../src/shared/exec.js';
import { requirePrograms } from '../../src/shared/programs.js';
import { FORWARDER } from '../../src/testbed/air.js';
import { testbedConfigSchema } from '../../src/testbed/config.js';
import {
  type TestbedState,
  testbedDown,
  testbedLink,
  testbedLinkSet,
  testbedUp,
  towerApi,
} from '../../src/testbed/testbed.js';
import type { MeshView } from '../../src/tower/api/mesh-types.js';
import { binomialBounds } from '../../test/support/binomial.js';
import { Tool } from '../../test/support/tools/index.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    delay: { type: 'string', default: '5' },
    loss: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '1' },
    /** one part only: link (cost and accuracy) or cuts (the testbed) */
    only: { type: 'string' },
  },
});
const SECONDS = Number(args.seconds);
const DELAY_MS = Number(args.delay);
const LOSS = Number(args.loss) / 100;
const ROUNDS = Number(args.rounds);
const RATE_PPS = 5;
const LINK_BPS = 20e6;
const FIXTURE = new URL('../../test/fixtures/mesh-stage.ts', import.meta.url).pathname;
const A = '10.77.236.1';
const B = '10.77.236.2';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? Number.NaN;
const pct = (x: number) => `${(x * 100).toFixed(2)} %`;

requirePrograms(['ip', 'ping', 'irtt', '/usr/bin/python3', 'babeld', 'nsenter', 'tc'], 'bench/mesh');

/** Bytes each way an interface carried since the last call. */
async function bytesOf(lab: Lab, netns: string, iface: string): Promise<{ tx: number; rx: number }> {
  const { stdout } = await lab.ip(netns, '-j', '-s', 'link', 'show', 'dev', iface);
  const [info] = JSON.parse(stdout) as { stats64: { tx: { bytes: number }; rx: { bytes: number } } }[];
  return { tx: info?.stats64.tx.bytes ?? 0, rx: info?.stats64.rx.bytes ?? 0 };
}

type Counts = ReturnType<LinkEmulator['counts']>;

/** What linkem at one ingress dropped between two of its counts. */
function dropped(before: Counts, after: Counts): Count {
  const lost = Number(after.droppedPackets - before.droppedPackets);
  const passed = Number(after.passedPackets - before.passedPackets);
  return { lost, of: lost + passed };
}

/** The last sample taken at or before `t`. */
function at<T extends { t: number }>(samples: T[], t: number): T | undefined {
  let hit: T | undefined;
  for (const s of samples) if (s.t <= t) hit = s;
  return hit ?? samples[0];
}

interface Count {
  lost: number;
  of: number;
}

/** How a tool's run ends: its figures, and the window of send times its loss counts cover. */
type Finish = () => Promise<
  Omit<Accuracy, 'countedOut' | 'countedBack' | 'bytesPerSecond'> & {
    window: { fromMs: number; toMs: number };
  }
>;

interface Accuracy {
  rttMs: number;
  /** lost of sent, each way, as the tool counted */
  lossOut: Count;
  lossBack: Count;
  /** what linkem counted: out at b's ingress, back at a's */
  countedOut: Count;
  countedBack: Count;
  bytesPerSecond: number;
}

async function radioLink(): Promise<{ tacmesh: Accuracy; irtt: Accuracy; pingMs: number }> {
  const lab = new Lab();
  const held: LinkEmulator[] = [];
  try {
    const a = await lab.netns('a', { ipv6: false });
    const b = await lab.netns('b', { ipv6: false });
    const air = await lab.netns('air', { ipv6: false });
    await lab.veth({ netns: a, name: 'mesh-b', addr: `${A}/30` }, { netns: air, name: 'to-a' });
    await lab.veth({ netns: b, name: 'mesh-a', addr: `${B}/30` }, { netns: air, name: 'to-b' });
    for (const end of ['to-a', 'to-b']) await lab.ip(air, 'link', 'set', end, 'promisc', 'on');
    const forwarder = new Tool(
      lab.spawn(air, '/usr/bin/python3', ['-u', '-c', FORWARDER, 'to-a', 'to-b', String(DELAY_MS)]),
    );
    await sleep(500);
    if (forwarder.child.exitCode !== null) throw new Error(`the air's forwarder exited: ${forwarder.stdout}`);

    const pingOut = await lab.exec(a, 'ping', ['-c', '50', '-i', '0.2', B]);
    const pingMs = median([...pingOut.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])));

    const inA = LinkEmulator.attach('mesh-b', { netns: a, direction: 'ingress', loss: 0 });
    held.push(inA);
    const inB = LinkEmulator.attach('mesh-a', { netns: b, direction: 'ingress', loss: 0 });
    held.push(inB);

    /**
     * One tool alone on the link for `seconds`: bytes each way, and what linkem dropped of
     * its packets in the window the tool's own count covers (linkem's counts every 100 ms).
     */
    const alone = async (start: () => Promise<Finish>, seconds: number, loss: number) => {
      inA.setLoss(loss);
      inB.setLoss(loss);
      const samples: { t: number; a: Counts; b: Counts }[] = [];
      const sample = () => samples.push({ t: Date.now(), a: inA.counts(), b: inB.counts() });
      sample();
      const sampler = setInterval(sample, 100);
      try {
        const finish = await start();
        // From when the tool runs (a Node process takes a moment to start probing).
        const bytes0 = await bytesOf(lab, a, 'mesh-b');
        const t0 = Date.now();
        await sleep(seconds * 1000);
        const bytes1 = await bytesOf(lab, a, 'mesh-b');
        const elapsed = (Date.now() - t0) / 1000;
        const { window, ...r } = await finish();
        sample();
        // The drops of a probe come a path's delay after it was sent, the answer's two.
        const from = at(samples, window.fromMs);
        const to = at(samples, window.toMs + 4 * DELAY_MS + 100);
        return {
          ...r,
          countedOut: from && to ? dropped(from.b, to.b) : { lost: 0, of: 0 },
          countedBack: from && to ? dropped(from.a, to.a) : { lost: 0, of: 0 },
          bytesPerSecond: Math.max(bytes1.tx - bytes0.tx, bytes1.rx - bytes0.rx) / elapsed,
        };
      } finally {
        clearInterval(sampler);
      }
    };

    const tacmesh = (seconds: number) => async () => {
      const mesh = {
        probe: { ratePps: RATE_PPS, windowMs: seconds * 1000, timeoutMs: 1000 },
        intervalMs: 1000,
      };
      const reflector = new Tool(lab.spawnNode(b, FIXTURE, [JSON.stringify({ mesh, links: [] })]));
      await reflector.line('ready');
      const sender = new Tool(
        lab.spawnNode(a, FIXTURE, [
          JSON.stringify({
            mesh,
            links: [{ iface: 'mesh-b', address: A, rateMbit: 20, mesh: { neighbour: B } }],
          }),
        ]),
      );
      await sender.line('ready');
      // When each report arrived: its window is the probes sent from windowMs + timeout
      // before it to a timeout before it.
      const arrivals: number[] = [];
      sender.child.stdout?.on('data', (d: Buffer) => {
        for (const line of d.toString().split('\n')) if (line.startsWith('[')) arrivals.push(Date.now());
      });
      return async () => {
        await sleep(1500); // the window's last probes settle (answered, or past the timeout)
        const last =
          sender.stdout
            .trim()
            .split('\n')
            .filter((l) => l.startsWith('['))
            .at(-1) ?? '[]';
        const report = (JSON.parse(last) as LinkReport[])[0];
        const sent = report?.probe.sent ?? 0;
        sender.child.kill();
        reflector.child.kill();
        await Promise.all([sender.exited, reflector.exited]);
        const reportMs = arrivals.at(-1) ?? Date.now();
        return {
          window: { fromMs: reportMs - seconds * 1000 - 1000, toMs: reportMs - 1000 },
          rttMs: report?.probe.rttMs?.median ?? Number.NaN,
          lossOut: { lost: Math.round(((report?.probe.lossForwardPct ?? 0) / 100) * sent), of: sent },
          lossBack: { lost: Math.round(((report?.probe.lossBackwardPct ?? 0) / 100) * sent), of: sent },
        };
      };
    };
    const irtt = (seconds: number) => async () => {
      const file = join(tmpdir(), `tacmesh-bench-irtt-${process.pid}.json`);
      const fromMs = Date.now();
      const server = new Tool(lab.spawn(b, 'irtt', ['server', '-b', `${B}:2112`]));
      await sleep(300);
      const client = new Tool(
        lab.spawn(a, 'irtt', [
          'client',
          '-i',
          `${1000 / RATE_PPS}ms`,
          '-d',
          `${seconds}s`,
          '-Q',
          '-o',
          file,
          `${B}:2112`,
        ]),
      );
      return async () => {
        await client.exited;
        server.child.kill();
        await server.exited;
        const s = (
          JSON.parse(readFileSync(file, 'utf8')) as {
            stats: {
              rtt: { median: number };
              packets_sent: number;
              server_packets_received: number;
              packets_received: number;
            };
          }
        ).stats;
        rmSync(file, { force: true });
        return {
          window: { fromMs, toMs: Date.now() },
          rttMs: s.rtt.median / 1e6,
          lossOut: { lost: s.packets_sent - s.server_packets_received, of: s.packets_sent },
          lossBack: { lost: s.server_packets_received - s.packets_received, of: s.server_packets_received },
        };
      };
    };

    // Cost first, on a clean link; then each tool alone under loss.
    const costT = await alone(tacmesh(10), 10, 0);
    const costI = await alone(irtt(10), 10, 0);
    const accT = await alone(tacmesh(SECONDS), SECONDS, LOSS);
    const accI = await alone(irtt(SECONDS), SECONDS, LOSS);
    return {
      tacmesh: { ...accT, bytesPerSecond: costT.bytesPerSecond },
      irtt: { ...accI, bytesPerSecond: costI.bytesPerSecond },
      pingMs,
    };
  } finally {
    for (const em of held) em.close();
    await lab.cleanup();
  }
}

interface Detection {
  kind: string;
  babelMs: number;
  nodeMs: number;
  towerMs: number;
}

async function cutDetection(): Promise<Detection[]> {
  const state: TestbedState = await testbedUp(
    testbedConfigSchema.parse({ apiPort: 18443 + (process.pid % 1000) }),
    (m) => process.stderr.write(`[testbed] ${m}\n`),
  );
  const out: Detection[] = [];
  try {
    const n1 = `${state.prefix}-n1`;
    const target = state.plan.nodes[1]?.slices[0]?.members[0]?.address.split('/')[0] ?? '';
    const direct = async () =>
      (await run('ip', ['-n', n1, 'route', 'get', target])).stdout.includes('dev mesh-n2');
    const until = async (what: string, ok: () => Promise<boolean>, timeoutMs: number, everyMs = 200) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await ok().catch(() => false))) {
        if (Date.now() > deadline) throw new Error(`no ${what} in ${timeoutMs / 1000} s`);
        await sleep(everyMs);
      }
      return Date.now();
    };
    const n1end = async () =>
      (await towerApi<MeshView>(state, 'mesh')).links
        .flatMap((l) => l.ends)
        .find((e) => e.node === 'n1' && e.iface === 'mesh-n2');
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of ['reported by the radio (link cut)', 'silent (link set --loss 100)']) {
        await until(
          'direct route n1 → n2 and the link up',
          async () => (await direct()) && (await n1end())?.state === 'up',
          120_000,
          500,
        );
        const cutAt = Date.now();
        if (kind.startsWith('reported')) testbedLink('cut', 'n1', 'n2');
        else await testbedLinkSet('n1', 'n2', { lossPct: 100 });
        const [babelAt, towerAt] = await Promise.all([
          until('route change at n1', async () => !(await direct()), 60_000, 20),
          until('the link down at the tower', async () => (await n1end())?.state === 'down', 60_000, 100),
        ]);
        const end = await n1end();
        out.push({
          kind,
          babelMs: babelAt - cutAt,
          nodeMs: (end?.sinceMs ?? Number.NaN) - cutAt,
          towerMs: towerAt - cutAt,
        });
        console.error(`[bench] ${kind}: ${JSON.stringify(out.at(-1))}`);
        if (kind.startsWith('reported')) testbedLink('restore', 'n1', 'n2');
        else await testbedLinkSet('n1', 'n2', { lossPct: state.config.link.lossPct });
      }
    }
  } finally {
    await testbedDown(() => undefined, state);
  }
  return out;
}

const link = args.only === 'cuts' ? undefined : await radioLink();
const cuts = args.only === 'link' ? [] : await cutDetection();

if (link) {
  const truthRtt = 2 * DELAY_MS;
  console.log(
    `\nbench/mesh — a radio link of ${DELAY_MS} ms each way, ${pct(LOSS)} loss each way; ${SECONDS} s per tool; probes at ${RATE_PPS}/s\n`,
  );
  console.log('| | tacmesh (STAMP) | irtt | tacmesh / irtt |');
  console.log('|---|---|---|---|');
  const row = (what: string, t: number, i: number, fmt: (x: number) => string) =>
    console.log(`| ${what} | ${fmt(t)} | ${fmt(i)} | ${(t / i).toFixed(2)} |`);
  row('cost, busier direction (bytes/s)', link.tacmesh.bytesPerSecond, link.irtt.bytesPerSecond, (x) =>
    x.toFixed(0),
  );
  row(
    'cost as a share of 20 Mbit/s',
    (link.tacmesh.bytesPerSecond * 8) / LINK_BPS,
    (link.irtt.bytesPerSecond * 8) / LINK_BPS,
    (x) => `${(x * 100).toFixed(4)} %`,
  );
  row(
    `median RTT (ms; configured ${truthRtt}, ping ${link.pingMs.toFixed(3)})`,
    link.tacmesh.rttMs,
    link.irtt.rttMs,
    (x) => x.toFixed(3),
  );
  row('  ÷ configured RTT', link.tacmesh.rttMs / truthRtt, link.irtt.rttMs / truthRtt, (x) => x.toFixed(3));
  row('  ÷ ping through the same air', link.tacmesh.rttMs / link.pingMs, link.irtt.rttMs / link.pingMs, (x) =>
    x.toFixed(3),
  );
  const share = (c: Count) => c.lost / (c.of || 1);
  const counted = (c: Count) => {
    const { lo, hi } = binomialBounds(c.of, LOSS);
    return `${pct(share(c))} (${c.lost} of ${c.of}; chance alone ${lo}..${hi})`;
  };
  const lossRow = (what: string, t: Count, i: Count) =>
    console.log(`| ${what} | ${counted(t)} | ${counted(i)} | ${(share(t) / share(i)).toFixed(2)} |`);
  lossRow(`loss out (configured ${pct(LOSS)})`, link.tacmesh.lossOut, link.irtt.lossOut);
  lossRow('  linkem counted on its packets', link.tacmesh.countedOut, link.irtt.countedOut);
  lossRow(`loss back (configured ${pct(LOSS)})`, link.tacmesh.lossBack, link.irtt.lossBack);
  lossRow('  linkem counted on its packets', link.tacmesh.countedBack, link.irtt.countedBack);
  console.log(
    `\n(Cost is one session's; a radio link carries two, one per end: ${((2 * link.tacmesh.bytesPerSecond * 8 * 100) / LINK_BPS).toFixed(4)} % of 20 Mbit/s each way for tacmesh. Chance alone: the 99.9 % binomial interval of the loss count at the configured loss.)`,
  );
}
if (cuts.length) {
  console.log('\ncut of n1–n2 on the testbed: ms from the cut');
  console.log(
    '| cut | babeld route change at n1 | tacmesh down at the node | at the tower | node / babeld |',
  );
  console.log('|---|---|---|---|---|');
  for (const c of cuts)
    console.log(
      `| ${c.kind} | ${c.babelMs} | ${c.nodeMs} | ${c.towerMs} | ${(c.nodeMs / c.babelMs).toFixed(2)} |`,
    );
}
