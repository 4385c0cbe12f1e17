import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { login, openBrowser, sleep, spkiOfTower, waitFor } from '../../test/support/dashboard-rig.js';
import { loadConfig } from '../shared/config.js';
import type { MeshEvents, StepEvent } from '../tower/api/mesh-types.js';
import type { NodeInfo } from '../tower/api/node-types.js';
import type { ServiceRow } from '../tower/api/services-types.js';
import { testbedConfigSchema } from './config.js';
import { formatReport, type ScenarioReport, scenarioReport } from './scenario/report.js';
import { runScenario, type StepDone } from './scenario/run.js';
import { ScenarioSpec } from './scenario/schema.js';
import { readState, type TestbedState, testbedDown, testbedUp, towerApi } from './testbed.js';

const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;

/** The page's chart objects as page.evaluate callbacks see them (they run in Chromium). */
declare const window: {
  tacmeshCharts: Record<
    string,
    | { getOption(): { series: { id?: string; data?: unknown[]; markLine?: { data?: unknown[] } }[] } }
    | undefined
  >;
};

/** A page of the dashboard, a moment after it shows, as test-artifacts/story-<name>.png (the README's pictures). */
async function shoot(page: Page, url: string, hash: string, name: string): Promise<void> {
  await page.goto(`${url}#/${hash}`);
  await sleep(2500);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}story-${name}.png` });
  assert.ok(readFileSync(`${ARTIFACTS}story-${name}.png`).length > 10_000, `a picture of ${name}`);
}

/** The default story's steps, seconds apart instead of a minute (the story's own link and node). */
const SHORT_STORY = `
name: short story
steps:
  - { at: 5, link: set, a: n1, b: n2, rateMbit: 4, lossPct: 2 }
  - { at: 20, link: cut, a: n1, b: n2 }
  - { at: 30, mgmt: cut, node: n2 }
  - { at: 50, restore: all }
end: 60
`;

describe('the demo story, shortened: services under a policy, a degraded and a cut link, a cut management link', () => {
  let state: TestbedState;
  let browser: Awaited<ReturnType<typeof openBrowser>> | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-story-'));

  before(async () => {
    const config = testbedConfigSchema.parse({
      apiPort: 17443 + (process.pid % 1000),
      hq: { enabled: false },
    });
    state = await testbedUp(config, (m) => process.stderr.write(`[testbed] ${m}\n`));
  });

  after(async () => {
    await browser?.close();
    if (readState()?.prefix === state?.prefix) await testbedDown(() => undefined, state);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the story runs start to end; each step is on the tower with its answer; the report is what the API says', async () => {
    const file = join(dir, 'story.yaml');
    writeFileSync(file, SHORT_STORY);
    const spec = loadConfig(file, ScenarioSpec);
    const lines: string[] = [];
    const startMs = Date.now();
    browser = await openBrowser({ towerSpki: () => spkiOfTower(state.dir) });
    const page = await browser.context.newPage();
    await login(page, { url: state.apiUrl.replace(/\/$/, '') }, state.token);
    // Pictures while the story plays: the degraded link's QoS, the cut, the relayed node.
    const at = (s: number) => sleep(startMs + s * 1000 - Date.now());
    const url = state.apiUrl;
    const pictures = (async () => {
      await at(16);
      await shoot(page, url, 'qos', 'qos');
      await shoot(page, url, 'services', 'services');
      await at(26);
      await shoot(page, url, 'mesh', 'mesh');
      await at(42);
      await shoot(page, url, 'nodes', 'nodes');
    })();
    pictures.catch(() => undefined); // awaited after the story; its error is thrown there
    const done: StepDone[] = await runScenario(
      state,
      spec,
      (l) => lines.push(l),
      new AbortController().signal,
      startMs,
    );
    const endMs = Date.now();
    await pictures;
    assert.equal(done.length, 4, 'every step done');
    assert.deepEqual(lines, [
      't+5 s  radio link n1-n2 degraded to 4 Mbit/s, 2 % loss',
      't+20 s  radio link n1-n2 cut',
      't+30 s  management link of n2 cut',
      't+50 s  everything restored',
    ]);
    // The last records of the run reach the tower (an export interval, a batch or two).
    await sleep(3000);
    const report: ScenarioReport = await scenarioReport(state, startMs, endMs);
    console.log(formatReport(report));

    const events = await towerApi<MeshEvents>(state, `mesh/events?from=${startMs}&to=${endMs}&limit=2000`);
    const steps = events.events.filter((e): e is StepEvent & { text: string } => e.kind === 'step').reverse();
    assert.deepEqual(
      steps.map((s) => [s.action, s.subject]),
      [
        ['link-set', 'n1-n2'],
        ['link-cut', 'n1-n2'],
        ['mgmt-cut', 'n2'],
        ['restore', 'all'],
      ],
    );
    const [set, cut, mgmt, restore] = steps;
    const answered = (s: StepEvent | undefined, kinds: string[]) =>
      kinds.every((k) => s?.answer.some((a) => a.kind === k));
    // The radio reports 4 Mbit/s (DLEP): the link is degraded. Whether the closed loop then
    // acts depends on bulk filling 4 Mbit/s under 2 % loss, which TCP does or not as fast as
    // the machine lets it: the report shows it (QoS loop), the test does not assert it.
    assert.ok(set?.detectedMs !== null && answered(set, ['link-degraded']), JSON.stringify(set));
    // The cut: the link down, the route through the relay n3.
    assert.ok(cut?.detectedMs !== null && cut?.reroutedMs !== null, JSON.stringify(cut));
    assert.ok(answered(cut, ['link-down', 'route-changed', 'relayed']), JSON.stringify(cut?.answer));
    // The management cut: n2's telemetry through a neighbour.
    assert.ok(mgmt?.detectedMs !== null, JSON.stringify(mgmt));
    assert.ok(
      mgmt?.answer.some((a) => a.kind === 'node-via' && a.text.startsWith('n2 reaches the tower through')),
    );
    assert.ok(restore?.detectedMs !== null && restore?.reroutedMs !== null, JSON.stringify(restore));

    // The report's numbers are the API's.
    assert.deepEqual(
      report.steps.map((s) => [s.label, s.detectedMs, s.reroutedMs, s.qosMs]),
      steps.map((s) => [s.label, s.detectedMs, s.reroutedMs, s.qosMs]),
    );
    const rows = await towerApi<ServiceRow[]>(state, `services?from=${startMs}&to=${endMs}`);
    assert.deepEqual(
      report.services.map((s) => [s.name, s.requests, s.p95Ms, s.errorPct]).sort(),
      rows.map((r) => [r.name, r.requests, r.p95Ms, r.errorPct]).sort(),
    );
    assert.deepEqual(report.services.map((s) => s.name).sort(), ['bulk', 'c2', 'sensor', 'web']);
    const c2 = report.services.find((s) => s.name === 'c2');
    assert.ok(
      c2 && c2.requests > 0 && c2.heldPct !== null,
      `C2 measured against its objective: ${JSON.stringify(c2)}`,
    );
    const nodes = await towerApi<NodeInfo[]>(state, 'nodes');
    assert.equal(
      report.records.relayed,
      nodes.reduce((s, n) => s + n.recordsRelayed, 0),
    );
    assert.ok(
      report.records.relayed > 0,
      'n2 sent records through a relay while its management link was cut',
    );
    assert.equal(report.records.lost, 0, 'no record lost');

    // The Overview marks each step on the time axis: a line across the throughput chart, a pin on the strip.
    await page.goto(url);
    const marks = await waitFor(
      'the steps on the Overview',
      async () => {
        const m = await page.evaluate(() => ({
          lines: window.tacmeshCharts.throughput?.getOption().series[0]?.markLine?.data?.length ?? 0,
          pins:
            window.tacmeshCharts['mesh-events']?.getOption().series.find((x) => x.id === 'step')?.data
              ?.length ?? 0,
        }));
        return m.lines === 4 && m.pins === 4 ? m : undefined;
      },
      20_000,
    );
    assert.deepEqual(marks, { lines: 4, pins: 4 });
    await shoot(page, url, 'overview', 'overview');
  });
});
