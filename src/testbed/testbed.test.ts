import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { openBrowser, spkiOfTower } from '../../test/support/dashboard-rig.js';
import { parseMetrics } from '../../test/support/scrape.js';
import { isAlive } from '../netlab/processes.js';
import { run } from '../shared/exec.js';
import type { LinkSeries, MeshEvents, MeshPath, MeshView } from '../tower/api/mesh-types.js';
import { testbedConfigSchema } from './config.js';
import {
  NODE_METRICS_PORT,
  readState,
  type TestbedState,
  testbedDown,
  testbedLink,
  testbedUp,
  towerApi,
} from './testbed.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;

async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(500);
  }
}

const OUR_PROGRAMS = ['linkem', 'flowmon_ingress', 'flowmon_egress'];

/** Ids of the loaded programs with our names. */
async function ourPrograms(): Promise<Set<number>> {
  const { stdout } = await run('bpftool', ['-j', 'prog', 'show']);
  return new Set(
    (JSON.parse(stdout) as { id: number; name?: string }[])
      .filter((p) => OUR_PROGRAMS.includes(p.name ?? ''))
      .map((p) => p.id),
  );
}

interface Flow {
  src: string;
  dst: string;
  locality: string;
}

/** The page's chart objects as page.evaluate callbacks see them (they run in Chromium). */
interface PageChart {
  getOption(): {
    series: {
      links?: { source: string; target: string; lineStyle: { color: string; width: number } }[];
      id?: string;
      data?: unknown[];
    }[];
  };
}
declare const window: { tacmeshCharts: Record<string, PageChart | undefined> };
declare const document: { querySelector(s: string): { getAttribute(name: string): string | null } | null };

/** A node's Prometheus samples, fetched inside its namespace (its endpoint is on the namespace's loopback). */
async function nodeMetrics(state: TestbedState, node: string): Promise<Map<string, number>> {
  const fetcher = `fetch('http://127.0.0.1:${NODE_METRICS_PORT}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`;
  const { stdout } = await run('nsenter', [
    `--net=/run/netns/${state.prefix}-${node}`,
    process.execPath,
    '-e',
    fetcher,
  ]);
  return parseMetrics(stdout);
}

/** The value of the one sample of `name` whose labels include every one of `labels`. */
function labelled(
  samples: Map<string, number>,
  name: string,
  labels: Record<string, string>,
): number | undefined {
  for (const [k, v] of samples) {
    if (!k.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([l, x]) => k.includes(`${l}="${x}"`))) return v;
  }
  return undefined;
}

/** Every path from a to b (one per slice of b) at the tower. */
const pathsOf = (view: MeshView, a: string, b: string): MeshPath[] =>
  view.paths.filter((p) => p.from === a && p.to === b);

describe("testbed: the paper's 4-node mesh (real namespaces, babeld, agents, tower)", () => {
  let state: TestbedState;
  let programsBefore: Set<number>;

  before(async () => {
    programsBefore = await ourPrograms();
    const config = testbedConfigSchema.parse({ apiPort: 18443 + (process.pid % 1000) });
    state = await testbedUp(config, (m) => process.stderr.write(`[testbed] ${m}\n`));
  });

  after(async () => {
    if (readState()?.prefix === state?.prefix) await testbedDown(() => undefined, state);
  });

  test('the tower shows every node healthy and traffic inside nodes, between nodes and external, with HTTP from every node', async () => {
    const started = Date.now();
    // A liveness bound, not a target: how long it took is printed.
    const result = await waitFor('nodes, localities and HTTP', 90_000, async () => {
      const nodes = await towerApi<{ name: string; connected: boolean }[]>(state, 'nodes');
      const pies = await towerApi<Record<string, { ip: string }[]>>(state, 'pies?last=1m');
      const http = await towerApi<{ node: string }[]>(state, 'http?last=1m&limit=2000');
      const ok =
        state.plan.nodes.every((n) => nodes.some((x) => x.name === n.name && x.connected)) &&
        ['intra', 'inter', 'external'].every((k) => (pies[k]?.length ?? 0) > 0) &&
        // (a node's first probes to a neighbour that has not said hello yet count as external)
        (pies.external ?? []).some((e) => e.ip === state.plan.external.serverAddr) &&
        state.plan.nodes.every((n) => http.some((h) => h.node === n.name));
      return ok ? { pies } : undefined;
    });
    console.log(`every node, locality and node's HTTP seen at the tower after ${Date.now() - started} ms`);
    assert.ok(
      result.pies.external?.some((s) => s.ip === state.plan.external.serverAddr),
      'the external server is external',
    );
  });

  test('the tower sees every radio link, measured from both ends: up, RTT, capacity from the radio', async () => {
    const mesh = await waitFor('every radio link up at the tower', 60_000, async () => {
      const view = await towerApi<MeshView>(state, 'mesh');
      return view.links.length === state.plan.links.length &&
        view.links.every((l) => l.state === 'up' && l.ends.length === 2)
        ? view
        : undefined;
    });
    for (const l of mesh.links) {
      const planned = state.plan.links.some(
        (p) => (p.a === l.a && p.b === l.b) || (p.a === l.b && p.b === l.a),
      );
      assert.ok(planned, `${l.a}-${l.b} is a link of the plan`);
      assert.ok(l.rttMs !== null && l.rttMs > 0, `${l.a}-${l.b}: an RTT`);
      assert.equal(l.capacityBps, state.config.link.rateMbit * 1e6, 'capacity as the radio reports it');
      assert.ok(l.ends.every((e) => e.capacityFrom === 'dlep'));
    }
    // The node's own Prometheus endpoint says the same of its links.
    const n1 = await nodeMetrics(state, 'n1');
    const link = { iface: 'mesh-n2', neighbour: '10.77.200.2' };
    assert.equal(labelled(n1, 'tacmesh_node_mesh_link_state', { ...link, state: 'up' }), 1);
    assert.equal(labelled(n1, 'tacmesh_node_mesh_link_state', { ...link, state: 'down' }), 0);
    assert.equal(labelled(n1, 'tacmesh_node_mesh_link_capacity_bps', link), state.config.link.rateMbit * 1e6);
    assert.ok((labelled(n1, 'tacmesh_node_mesh_link_rtt_seconds', link) ?? 0) > 0, 'an RTT in seconds');
    assert.ok(labelled(n1, 'tacmesh_node_mesh_link_loss_ratio', { ...link, direction: 'out' }) !== undefined);
  });

  test("every pair of nodes with a clean direct link routes direct, by the tower's route reports and by the kernel", async () => {
    const started = Date.now();
    const pairs = state.plan.links.flatMap((l) => [
      [l.a, l.b],
      [l.b, l.a],
    ]);
    // A liveness bound; before babeld's smoothing was shortened, a pair stayed relayed for ~28 s.
    const view = await waitFor('every directly linked pair routed direct at the tower', 30_000, async () => {
      const v = await towerApi<MeshView>(state, 'mesh');
      const direct = pairs.every(([a, b]) => {
        const paths = pathsOf(v, a ?? '', b ?? '');
        return paths.length === 2 && paths.every((p) => p.status === 'ok' && p.hops.join() === `${a},${b}`);
      });
      return direct ? v : undefined;
    }).catch(async (err: Error) => {
      const v = await towerApi<MeshView>(state, 'mesh');
      const relayed = v.paths.filter((p) => p.hops.length > 2 || p.status !== 'ok');
      throw new Error(
        `${err.message}: ${relayed.map((p) => `${p.prefix} ${p.hops.join('→')} ${p.status}`).join('; ')}`,
      );
    });
    console.log(
      `every directly linked pair routed direct at the tower ${Date.now() - started} ms into this test`,
    );
    assert.ok(
      view.nodes.every((n) => n.routes === 'babel'),
      'every node reads its routes from babeld',
    );
    // Pairs without a link of their own (n2, n4) go through one relay; nothing is unreachable.
    assert.ok(view.paths.every((p) => p.status === 'ok' && p.hops.length <= 3));
    // What the tower says of the direct pairs is what each node's kernel does (two relays of
    // equal cost may take turns, so the relayed pairs are not compared).
    for (const p of view.paths.filter((x) => x.hops.length === 2)) {
      const target = p.prefix.replace(/0\/24$/, '10');
      const { stdout } = await run('ip', ['-n', `${state.prefix}-${p.from}`, 'route', 'get', target]);
      assert.match(
        stdout,
        new RegExp(`dev mesh-${p.to} `),
        `${p.from} → ${target}: direct, as the tower says`,
      );
    }
  });

  test('cutting a radio link moves the traffic between its nodes to the relay; restoring it moves it back', async () => {
    const n1 = `${state.prefix}-n1`;
    const target = state.plan.nodes[1]?.slices[0]?.members[0]?.address.split('/')[0] ?? '';
    const via = async () => (await run('ip', ['-n', n1, 'route', 'get', target])).stdout;
    // Babel's link-quality costs settle over the first hellos (about 16 s at one a second):
    // until then a young direct link may cost more than a two-hop path.
    await waitFor('n1 reaching n2 directly while the link is up', 60_000, async () =>
      (await via()).includes('dev mesh-n2') ? true : undefined,
    );
    const relayFlows = async (since: number) => {
      const flows = await towerApi<Flow[]>(state, `talkers?node=n3&from=${since}&limit=1000`);
      return flows.filter((f) => f.src.startsWith('10.77.1') && f.dst.startsWith('10.77.2'));
    };
    // The link's time series has an up second before the cut (its first seconds count the
    // probes sent before the neighbour's reflector answered as lost).
    const upBefore = await waitFor('a second of n1-n2 up in its time series', 20_000, async () => {
      const s = await towerApi<LinkSeries>(state, `mesh/links/n1/n2?last=30s&step=1000`);
      return s.points.find((p) => p.state === 'up' && p.t + 2000 < Date.now());
    });
    assert.equal(upBefore.capacityBps, state.config.link.rateMbit * 1e6);
    assert.ok(upBefore.rttMs !== null && upBefore.rttMs > 0);
    testbedLink('cut', 'n1', 'n2');
    const cutAt = Date.now();
    const n1n2 = (v: MeshView) => v.links.find((l) => [l.a, l.b].sort().join() === 'n1,n2');
    const down = await waitFor('the cut link down at the tower', 30_000, async () => {
      const l = n1n2(await towerApi<MeshView>(state, 'mesh'));
      return l?.state === 'down' ? l : undefined;
    });
    console.log(
      `the cut n1-n2 was down at the tower ${Date.now() - cutAt} ms after the cut: ${JSON.stringify(down.ends.map((e) => e.why))}`,
    );
    await waitFor('n1 routing to n2 via the relay n3', 30_000, async () =>
      (await via()).includes('dev mesh-n3') ? true : undefined,
    );
    // The route change reaches the tower with the new next hop: n1's paths to n2 run through n3.
    const relayed = await waitFor("n1's new next hop for n2 at the tower", 15_000, async () => {
      const paths = pathsOf(await towerApi<MeshView>(state, 'mesh'), 'n1', 'n2');
      return paths.length === 2 && paths.every((p) => p.hops.join() === 'n1,n3,n2') ? paths : undefined;
    });
    assert.ok(
      relayed.every((p) => p.status === 'ok' && (p.since ?? 0) >= cutAt - 1000),
      'since the cut',
    );
    const { events } = await towerApi<MeshEvents>(state, `mesh/events?from=${cutAt - 1000}`);
    const change = events.find((e) => e.kind === 'route-changed' && e.node === 'n1' && e.to === 'n2');
    assert.deepEqual(
      change && [
        change.kind === 'route-changed' && change.before,
        change.kind === 'route-changed' && change.after,
      ],
      ['n2', 'n3'],
    );
    assert.ok(
      events.some((e) => e.kind === 'relayed' && e.node === 'n1' && e.to === 'n2' && e.after === 'n3'),
      'n2 reached through a relay',
    );
    assert.ok(
      events.some((e) => e.kind === 'link-down' && e.node === 'n1' && e.peer === 'n2'),
      'the cut link down',
    );
    // The link's time series holds the cut: the second before it up, a bucket after it down.
    const series = await towerApi<LinkSeries>(state, `mesh/links/n1/n2?from=${upBefore.t}&step=1000`);
    assert.equal(series.stepMs, 1000);
    assert.equal(series.points[0]?.state, 'up');
    assert.ok(series.points.some((p) => p.t > cutAt + 1000 && p.state === 'down'));
    const seen = await waitFor('n1 → n2 traffic in the relay node n3 flows', 20_000, async () => {
      const f = await relayFlows(cutAt);
      return f.length ? f : undefined;
    });
    assert.ok(seen.every((f) => f.locality === 'inter'));
    testbedLink('restore', 'n1', 'n2');
    const restoredAt = Date.now();
    // Every slice of n2: with link-quality costs each route returns as the link's hellos do.
    const targets = (state.plan.nodes[1]?.slices ?? []).map((s) => s.members[0]?.address.split('/')[0] ?? '');
    await waitFor('n1 routing to every slice of n2 directly again', 90_000, async () => {
      const routes = await Promise.all(targets.map((t) => run('ip', ['-n', n1, 'route', 'get', t])));
      return routes.every((r) => r.stdout.includes('dev mesh-n2')) ? true : undefined;
    });
    console.log(`n1 routed every slice of n2 directly again ${Date.now() - restoredAt} ms after the restore`);
    await waitFor('the direct path back at the tower', 15_000, async () =>
      pathsOf(await towerApi<MeshView>(state, 'mesh'), 'n1', 'n2').every((p) => p.hops.join() === 'n1,n2')
        ? true
        : undefined,
    );
    const backAt = Date.now();
    await sleep(5000);
    assert.equal((await relayFlows(backAt + 1500)).length, 0, 'the relay no longer carries n1 → n2 traffic');
  });

  test("an agent's repair is reported to the tower", async () => {
    const bridge = `${state.prefix}-ops`;
    await run('ip', ['-n', `${state.prefix}-n2`, 'link', 'del', bridge]);
    const event = await waitFor('the repair event of n2 at the tower', 15_000, async () => {
      const nodes = await towerApi<
        { name: string; events: { entity: string; action: string; ok: boolean; cause: string }[] }[]
      >(state, 'nodes');
      return nodes
        .find((n) => n.name === 'n2')
        ?.events.find((e) => e.cause === 'drift' && e.entity.includes(bridge) && e.ok);
    });
    assert.match(event.action, /create|bridge/);
  });

  test('the dashboard during the demo (screenshot artifact)', async () => {
    const browser = await openBrowser({ towerSpki: () => spkiOfTower(state.dir) });
    try {
      const page = await browser.context.newPage();
      await page.goto(state.apiUrl);
      await page.locator('#token').fill(state.token);
      await page.locator('form.login button[type=submit]').click();
      await page.locator('header nav a.on').waitFor();
      // The cut and restore above are on the strip under the throughput's time axis.
      const kinds = await waitFor('the mesh events on the overview', 15_000, async () => {
        const k = JSON.parse(
          (await page.locator('#mesh-events').getAttribute('data-kinds')) ?? '{}',
        ) as Record<string, number>;
        return (k['link-down'] ?? 0) > 0 && (k['route-changed'] ?? 0) > 0 && (k.relayed ?? 0) > 0
          ? k
          : undefined;
      });
      console.log(`mesh events on the overview: ${JSON.stringify(kinds)}`);
      // In one look at the page: what the strip draws is what it counted.
      const strip = await page.evaluate(() => ({
        counted: document.querySelector('#mesh-events')?.getAttribute('data-kinds') ?? '{}',
        drawn:
          window.tacmeshCharts['mesh-events']?.getOption().series.map((x) => [x.id, x.data?.length]) ?? [],
      }));
      assert.deepEqual(
        Object.fromEntries(strip.drawn),
        JSON.parse(strip.counted),
        'the strip draws every event',
      );
      await sleep(2000);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${ARTIFACTS}demo-overview.png` });
      assert.ok(readFileSync(`${ARTIFACTS}demo-overview.png`).length > 10_000);
      // The Mesh page: every radio link in the table, drawn on the schematic.
      await page.goto(`${state.apiUrl}#/mesh`);
      await waitFor('every radio link on the Mesh page', 30_000, async () =>
        (await page.locator('#mesh-links tr').count()) === state.plan.links.length ? true : undefined,
      );
      // None is down. (Up or degraded: a busy machine's probes may cross the RTT threshold.)
      assert.equal(
        await page.locator('#mesh-links tr[data-state=down]').count(),
        0,
        'no radio link shown down',
      );
      // The path between two chosen nodes with no link of their own: highlighted hop by hop.
      await page.locator('#mesh-from').selectOption('n2');
      await page.locator('#mesh-to').selectOption('n4');
      // (n2 has two relays of equal cost to n4, n1 and n3: the page shows the one the tower has.)
      await waitFor('the path highlighted as the tower has it', 10_000, async () => {
        const shown = await page.locator('#mesh-path').getAttribute('data-hops');
        const tower = pathsOf(await towerApi<MeshView>(state, 'mesh'), 'n2', 'n4').map((p) => p.hops.join());
        return shown && tower.includes(shown) ? true : undefined;
      });
      // The highlight and the path it shows, in one look at the page.
      const { hops, edges } = await page.evaluate(() => ({
        hops: (document.querySelector('#mesh-path')?.getAttribute('data-hops') ?? '').split(','),
        edges: window.tacmeshCharts.mesh?.getOption().series[0]?.links ?? [],
      }));
      assert.equal(hops.length, 3, 'n2 reaches n4 through a relay');
      const key = (a: string, b: string) => [a, b].sort().join();
      const onPath = new Set([key(hops[0] ?? '', hops[1] ?? ''), key(hops[1] ?? '', hops[2] ?? '')]);
      const [lit, rest] = [
        edges.filter((e) => onPath.has(key(e.source, e.target))),
        edges.filter((e) => !onPath.has(key(e.source, e.target))),
      ];
      assert.equal(lit.length, 2, 'both links of the path are drawn');
      assert.equal(new Set(lit.map((e) => e.lineStyle.color)).size, 1, 'in one colour');
      assert.ok(
        rest.every(
          (e) =>
            e.lineStyle.color !== lit[0]?.lineStyle.color &&
            e.lineStyle.width < (lit[0]?.lineStyle.width ?? 0),
        ),
        'that no other link has, and wider',
      );
      await sleep(1000);
      await page.screenshot({ path: `${ARTIFACTS}demo-mesh.png` });
      // A click on a link: its time series, RTT and loss, load against capacity.
      await page.locator('#mesh-links tr[data-link="n1-n2"]').click();
      await page.locator('#mesh-link[data-link="n1-n2"]').waitFor({ state: 'visible' });
      const drawn = await waitFor('the link charts drawn', 10_000, async () => {
        // The points each series draws (no function declared in here: tsx would wrap it in a
        // helper the page does not have).
        const [rtt, load] = await page.evaluate(() =>
          ['mesh-link-rtt', 'mesh-link-load'].map((name) =>
            (window.tacmeshCharts[name]?.getOption().series ?? []).map((x) => [
              x.id,
              (x.data as [number, number | null][]).filter((p) => p[1] !== null).length,
            ]),
          ),
        );
        const d = { rtt: Object.fromEntries(rtt ?? []), load: Object.fromEntries(load ?? []) };
        return (d.rtt.RTT ?? 0) > 0 && (d.load.capacity ?? 0) > 0 ? d : undefined;
      });
      assert.ok(
        (drawn.load['load n1→n2'] ?? 0) > 0 && (drawn.rtt['loss n1→n2'] ?? 0) > 0,
        JSON.stringify(drawn),
      );
      await page.screenshot({ path: `${ARTIFACTS}demo-mesh-link.png`, fullPage: true });
    } finally {
      await browser.close();
    }
  });

  test('down leaves no namespace, link, process or program', async () => {
    const pids = Object.values(state.pids);
    const testbedPrograms = [...(await ourPrograms())].filter((id) => !programsBefore.has(id));
    assert.ok(testbedPrograms.length >= state.plan.nodes.length, 'the testbed had its programs loaded');
    await testbedDown(() => undefined, state);
    const { stdout: ns } = await run('ip', ['netns', 'list']);
    assert.doesNotMatch(ns, new RegExp(state.prefix));
    const { stdout: links } = await run('ip', ['link', 'show']);
    assert.doesNotMatch(links, new RegExp(state.prefix));
    assert.deepEqual(pids.filter(isAlive), [], 'every process is gone');
    // Namespaces are dismantled by the kernel in the background: their programs go with them.
    await waitFor('the programs to be freed', 30_000, async () => {
      const now = await ourPrograms();
      return testbedPrograms.some((id) => now.has(id)) ? undefined : true;
    });
    assert.equal(readState(), undefined, 'no state file');
  });
});
