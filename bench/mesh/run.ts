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
 *   node --import tsx bench/mesh/run.ts [--seconds 30] [--delay 5] [--loss 5] [--rounds 1]
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
import { Tool } from '../../test/support/tools/index.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    delay: { type: 'string', default: '5' },
    loss: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '1' },
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

/** What linkem at one ingress dropped since `before`. */
function dropped(em: LinkEmulator, before: ReturnType<LinkEmulator['counts']>) {
  const now = em.counts();
  const lost = Number(now.droppedPackets - before.droppedPackets);
  const passed = Number(now.passedPackets - before.passedPackets);
  return { lost, seen: lost + passed };
}

interface Accuracy {
  rttMs: number;
  lossOut: number;
  lossBack: number;
  /** what linkem counted: out at b's ingress, back at a's */
  countedOut: number;
  countedBack: number;
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

    /** One tool alone on the link for `seconds`: bytes each way, and what linkem dropped. */
    const alone = async (
      start: () => Promise<() => Promise<Omit<Accuracy, 'countedOut' | 'countedBack' | 'bytesPerSecond'>>>,
      seconds: number,
      loss: number,
    ) => {
      inA.setLoss(loss);
      inB.setLoss(loss);
      const finish = await start();
      // From when the tool runs (a Node process takes a moment to start probing).
      const bytes0 = await bytesOf(lab, a, 'mesh-b');
      const [ca, cb] = [inA.counts(), inB.counts()];
      const t0 = Date.now();
      await sleep(seconds * 1000);
      const out = dropped(inB, cb);
      const back = dropped(inA, ca);
      const bytes1 = await bytesOf(lab, a, 'mesh-b');
      const elapsed = (Date.now() - t0) / 1000;
      const r = await finish();
      return {
        ...r,
        countedOut: out.lost / (out.seen || 1),
        countedBack: back.lost / (back.seen || 1),
        bytesPerSecond: Math.max(bytes1.tx - bytes0.tx, bytes1.rx - bytes0.rx) / elapsed,
      };
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
      return async () => {
        await sleep(1500); // the window's last probes settle (answered, or past the timeout)
        const last =
          sender.stdout
            .trim()
            .split('\n')
            .filter((l) => l.startsWith('['))
            .at(-1) ?? '[]';
        const report = (JSON.parse(last) as LinkReport[])[0];
        sender.child.kill();
        reflector.child.kill();
        await Promise.all([sender.exited, reflector.exited]);
        return {
          rttMs: report?.probe.rttMs?.median ?? Number.NaN,
          lossOut: (report?.probe.lossForwardPct ?? Number.NaN) / 100,
          lossBack: (report?.probe.lossBackwardPct ?? Number.NaN) / 100,
        };
      };
    };
    const irtt = (seconds: number) => async () => {
      const file = join(tmpdir(), `tacmesh-bench-irtt-${process.pid}.json`);
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
              upstream_loss_percent: number;
              downstream_loss_percent: number;
            };
          }
        ).stats;
        rmSync(file, { force: true });
        return {
          rttMs: s.rtt.median / 1e6,
          lossOut: s.upstream_loss_percent / 100,
          lossBack: s.downstream_loss_percent / 100,
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

const link = await radioLink();
const cuts = await cutDetection();

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
row(`loss out (configured ${pct(LOSS)})`, link.tacmesh.lossOut, link.irtt.lossOut, pct);
row('  linkem counted on its packets', link.tacmesh.countedOut, link.irtt.countedOut, pct);
row(`loss back (configured ${pct(LOSS)})`, link.tacmesh.lossBack, link.irtt.lossBack, pct);
row('  linkem counted on its packets', link.tacmesh.countedBack, link.irtt.countedBack, pct);
console.log('\ncut of n1–n2 on the testbed: ms from the cut');
console.log('| cut | babeld route change at n1 | tacmesh down at the node | at the tower | node / babeld |');
console.log('|---|---|---|---|---|');
for (const c of cuts)
  console.log(
    `| ${c.kind} | ${c.babelMs} | ${c.nodeMs} | ${c.towerMs} | ${(c.nodeMs / c.babelMs).toFixed(2)} |`,
  );
