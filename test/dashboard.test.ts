/**
 * The dashboard end to end: a real node in a namespace sends known HTTP traffic to a real
 * tower; Debian's Chromium (playwright-core) signs in and checks what each page shows.
 * Screenshots of every page go to test-artifacts/.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { DashboardRig, login, openBrowser, POSITIONS, sleep, waitFor } from './support/dashboard-rig.js';
import { Tool, toolPath } from './support/tools/index.js';

/** The page's globals as page.evaluate callbacks see them (they run in Chromium, not here). */
interface PageChart {
  getOption(): unknown;
  convertToPixel(finder: string, value: number[]): number[];
  getDom(): { getBoundingClientRect(): { left: number; top: number } };
  getModel(): {
    getSeriesByIndex(i: number): {
      getData(): {
        indexOfName(name: string): number;
        getItemLayout(i: number): {
          cx: number;
          cy: number;
          r0: number;
          r: number;
          startAngle: number;
          endAngle: number;
        };
      };
    };
  };
}
declare const window: { tacmeshCharts: Record<string, PageChart | undefined> };
declare const document: { cookie: string };

const ARTIFACTS = new URL('../test-artifacts/', import.meta.url).pathname;

type Slice = { ip: string; count: number };

describe('dashboard: a real node, a real tower, Chromium', () => {
  const rig = new DashboardRig(151);
  let browser: { context: BrowserContext; close: () => Promise<void> };
  let page: Page;
  const stops: (() => void)[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await rig.start();
    browser = await openBrowser(rig);
    page = await browser.context.newPage();
    page.setDefaultTimeout(8000);
    page.on('pageerror', (err) => pageErrors.push(err.stack ?? err.message));
  });

  after(async () => {
    for (const stop of stops) stop();
    await browser?.close();
    await rig.stop();
  });

  const shot = (name: string) =>
    page.screenshot({ path: `${ARTIFACTS}dashboard-${name}.png`, fullPage: true });
  const slices = async (kind: string): Promise<Slice[]> =>
    JSON.parse((await page.locator(`#pie-${kind}`).getAttribute('data-slices')) ?? '[]') as Slice[];
  const asMap = (s: Slice[]) => Object.fromEntries(s.map((x) => [x.ip, x.count]));

  test('sign-in: a wrong token is refused; a right one sets an HttpOnly, Secure, SameSite=Strict session cookie', async () => {
    await page.goto(`${rig.url}/`);
    await page.locator('#token').fill('not-a-token');
    await page.locator('form.login button[type=submit]').click();
    await page.locator('#login-error', { hasText: 'not valid' }).waitFor({ timeout: 5000 });
    await shot('login');
    await login(page, rig, rig.operator);
    const cookie = (await browser.context.cookies()).find((c) => c.name === 'tacmesh_session');
    assert.ok(cookie, 'the login cookie is set');
    assert.ok(!cookie.value.includes(rig.operator), 'it holds a session id, not the token');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => document.cookie), '', 'scripts cannot read the session cookie');
    assert.match((await page.locator('#user').textContent()) ?? '', /olivia.*operator/);
  });

  test('the pies show the split of the traffic sent: inside the node, to node2, to the outside', async () => {
    const { ca, cb, n2, ext } = rig.ip;
    // One TCP connection per request: intra 3 (ca→cb), inter 2 (ca→n2), external 1 + 1 (ca, cb → ext).
    assert.deepEqual(await rig.get('ca', cb, ['/i1', '/i2', '/i3']), [200, 200, 200]);
    assert.deepEqual(await rig.get('ca', n2, ['/x1', '/status/503']), [200, 503]);
    assert.deepEqual(await rig.get('ca', ext, ['/e1']), [200]);
    assert.deepEqual(await rig.get('cb', ext, ['/status/404']), [404]);
    // A conversation is a distinct 5-tuple, so each connection is two (one per direction),
    // and each end of each is counted: an address's count is 2 × its connections.
    const expected = {
      intra: { [ca]: 6, [cb]: 6 },
      inter: { [ca]: 4, [n2]: 4 },
      external: { [ca]: 2, [cb]: 2, [ext]: 4 },
      all: { [ca]: 12, [cb]: 8, [n2]: 4, [ext]: 4 },
    };
    await waitFor(
      'the pies to show all the traffic sent',
      async () => {
        for (const [kind, want] of Object.entries(expected)) {
          const got = asMap(await slices(kind));
          if (JSON.stringify(Object.entries(got).sort()) !== JSON.stringify(Object.entries(want).sort()))
            return undefined;
        }
        return true;
      },
      10_000,
    ).catch(async (err) => {
      const got = Object.fromEntries(
        await Promise.all(Object.keys(expected).map(async (k) => [k, asMap(await slices(k))])),
      );
      throw new Error(`${(err as Error).message}: the page shows ${JSON.stringify(got)}`);
    });
    // The legend rows under each pie say the same as the chart's data.
    const legend = await page
      .locator('#pie-all tr[data-ip]')
      .evaluateAll((rows) =>
        rows.map((r) => [r.getAttribute('data-ip'), r.querySelector('.count')?.textContent]),
      );
    assert.deepEqual(Object.fromEntries(legend), { [ca]: '12', [cb]: '8', [n2]: '4', [ext]: '4' });
    // The chart itself holds those slices.
    const chartData = await page.evaluate(() => {
      const opt = window.tacmeshCharts['pie-external']?.getOption() as {
        series: { data: { name: string; value: number }[] }[];
      };
      return opt.series[0]?.data.map((d) => [d.name, d.value]);
    });
    assert.deepEqual(Object.fromEntries(chartData ?? []), expected.external);
    const kpi = async (id: string) => (await page.locator(`#kpi-${id} .kpi-value`).textContent())?.trim();
    await waitFor(
      'the HTTP counts',
      async () => ((await kpi('http')) === '7' && (await kpi('errors')) === '2' ? true : undefined),
      5000,
    );
    assert.equal(await kpi('conversations'), '14', '7 connections, two directions each');
  });

  test('clicking a pie slice filters the page by that address and locality', async () => {
    const { ext } = rig.ip;
    // A real mouse click on the slice of the outside address in the external pie: the pointer
    // goes round the ring until the tooltip names that address, and clicks there.
    const ring = await page.evaluate((ip) => {
      const c = window.tacmeshCharts['pie-external'];
      if (!c) return null;
      const data = c.getModel().getSeriesByIndex(0).getData();
      const l = data.getItemLayout(data.indexOfName(ip));
      const box = c.getDom().getBoundingClientRect();
      return { x: box.left + l.cx, y: box.top + l.cy, r: (l.r0 + l.r) / 2 };
    }, ext);
    assert.ok(ring, 'the external pie is drawn');
    const tooltip = page.locator('#pie-external .pie-chart > div').last();
    let at: { x: number; y: number } | undefined;
    for (let deg = 0; deg < 360 && !at; deg += 20) {
      const p = {
        x: ring.x + ring.r * Math.sin((deg * Math.PI) / 180),
        y: ring.y - ring.r * Math.cos((deg * Math.PI) / 180),
      };
      await page.mouse.move(p.x, p.y);
      await sleep(120);
      if (((await tooltip.textContent()) ?? '').includes(ext)) at = p;
    }
    assert.ok(at, `hovering the external pie shows ${ext} somewhere`);
    await page.mouse.click(at.x, at.y);
    await page
      .locator('#filter .chip', { hasText: ext })
      .waitFor({ timeout: 3000 })
      .catch(async (err) => {
        await shot('debug-click');
        throw new Error(
          `${err.message}; clicked at ${JSON.stringify(at)}; filter shows "${await page.locator('#filter').textContent()}"`,
        );
      });
    await page.locator('#filter .chip', { hasText: 'external' }).waitFor();
    await waitFor('the page to be filtered', async () =>
      (await page.locator('#pie-intra').getAttribute('class'))?.includes('is-empty') ? true : undefined,
    );
    assert.deepEqual(asMap(await slices('external')), { [rig.ip.ca]: 2, [rig.ip.cb]: 2, [ext]: 4 });
    assert.equal(await page.locator('#kpi-conversations .kpi-value').textContent(), '4');
    const talkers = await page.locator('#talkers tbody tr td.mono').allTextContents();
    assert.ok(talkers.length > 0 && talkers.every((t) => t.includes(ext)), `talkers: ${talkers}`);
    await shot('overview-filtered');
    await page.locator('#clear-filter').click();
    await waitFor('the filter to clear', async () =>
      (await page.locator('#kpi-conversations .kpi-value').textContent()) === '14' ? true : undefined,
    );
  });

  test('the map places node1, node2 and HQ, zoomed to the tens of km they span', async () => {
    stops.push(rig.load('ca', rig.ip.n2, 8, ['/api/orders', '/api/status', '/status/500']));
    stops.push(rig.load('cb', rig.ip.ext, 4, ['/reports/daily', '/status/404']));
    stops.push(rig.load('ca', rig.ip.cb, 6, ['/local/health']));
    await page.goto(`${rig.url}/#/map`);
    const markers = await waitFor('three markers', async () => {
      const m = JSON.parse((await page.locator('#page').getAttribute('data-markers')) ?? '[]') as {
        name: string;
        kind: string;
        lat: number;
        lon: number;
      }[];
      return m.length >= 3 ? m : undefined;
    });
    const byName = Object.fromEntries(markers.map((m) => [m.name, m]));
    assert.deepEqual(Object.keys(byName).sort(), ['HQ', 'node1', 'node2']);
    assert.equal(byName.node1?.kind, 'node');
    assert.equal(byName.HQ?.kind, 'place');
    assert.deepEqual({ lat: byName.node1?.lat, lon: byName.node1?.lon }, POSITIONS.node1);
    // The chart: node markers and place markers as series, lines between places, a view of tens of km.
    const chart = await page.evaluate(() => {
      const opt = window.tacmeshCharts.map?.getOption() as {
        geo: { boundingCoords: number[][] }[];
        series: { id: string; data: { name?: string; coords?: number[][] }[] }[];
      };
      const byId = Object.fromEntries(opt.series.map((x) => [x.id, x.data]));
      return {
        nodes: (byId.nodes ?? []).map((d) => d.name),
        places: (byId.places ?? []).map((d) => d.name),
        links: (byId.links ?? []).length,
        box: opt.geo[0]?.boundingCoords,
      };
    });
    assert.deepEqual(chart.nodes.sort(), ['node1', 'node2']);
    assert.deepEqual(chart.places, ['HQ']);
    assert.equal(chart.links, 2, 'node1↔node2 and node1↔HQ');
    const [[x0 = 0, y0 = 0] = [], [x1 = 0, y1 = 0] = []] = chart.box ?? [];
    assert.ok(
      x1 - x0 < 1 && y1 - y0 < 1,
      `the view fits the nodes (${x0},${y0} .. ${x1},${y1}), not the world`,
    );
    await page.locator('#map-links tr').first().waitFor();
    await sleep(800); // the 1:10m outlines
    // Hovering the node1–node2 line shows the pair and its counts. The line is a curve: walk the
    // pointer along the perpendicular bisector of its ends until it crosses it.
    const ends = await page.evaluate(
      ({ a, b }) => {
        const c = window.tacmeshCharts.map;
        if (!c) return null;
        const box = c.getDom().getBoundingClientRect();
        // (No named inner functions: the page has no helper for the names the test's compiler keeps.)
        return [a, b].map((p) => {
          const [x = 0, y = 0] = c.convertToPixel('geo', [p.lon, p.lat]);
          return { x: box.left + x, y: box.top + y };
        });
      },
      { a: POSITIONS.node1, b: POSITIONS.node2 },
    );
    assert.ok(ends?.[0] && ends[1], 'the map is drawn');
    const [e1, e2] = ends;
    const len = Math.hypot(e2.x - e1.x, e2.y - e1.y);
    const normal = { x: -(e2.y - e1.y) / len, y: (e2.x - e1.x) / len };
    const tip = page.locator('#map-chart > div').last();
    let shown = '';
    for (let d = 0; d <= 0.3 * len && !shown.includes('↔'); d += 3) {
      for (const side of d === 0 ? [1] : [1, -1]) {
        await page.mouse.move(
          (e1.x + e2.x) / 2 + side * d * normal.x,
          (e1.y + e2.y) / 2 + side * d * normal.y,
        );
        await sleep(40);
        shown = (await tip.textContent()) ?? '';
        if (shown.includes('↔')) break;
      }
    }
    if (!shown.includes('↔')) await shot('debug-map');
    assert.match(
      shown,
      /node[12] ↔ node[12]/,
      `the tooltip shows the pair (got "${shown}" between ${JSON.stringify(ends)})`,
    );
    assert.match(shown, /\d+ conversations/);
    assert.match(
      shown,
      new RegExp(`${rig.ip.ca.replaceAll('.', '\\.')} → ${rig.ip.n2.replaceAll('.', '\\.')}`),
    );
    await shot('map');
  });

  test('an HTTP request sent now appears on the HTTP page, without reload', async () => {
    await page.goto(`${rig.url}/#/http`);
    await page.locator('#http-table').waitFor();
    const url = `/e2e/probe-${Date.now()}`;
    const t0 = Date.now();
    assert.deepEqual(await rig.get('ca', rig.ip.ext, [url]), [200]);
    // A liveness bound: the time it took is printed (bench/dashboard measures it).
    await page.locator(`#http-rows tr[data-url="${url}"]`).first().waitFor({ timeout: 20_000 });
    console.log(`the request appeared on the HTTP page after ${Date.now() - t0} ms`);
    const row = page.locator(`#http-rows tr[data-url="${url}"]`).first();
    assert.match((await row.textContent()) ?? '', /node1.*GET/);
    // The filter finds it, and the status breakdown has the codes sent.
    await page.locator('#http-url').fill('probe-');
    await waitFor('the filtered list', async () => {
      const urls = await page
        .locator('#http-rows tr')
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-url')));
      return urls.length > 0 && urls.every((u) => u?.includes('probe-')) ? true : undefined;
    });
    await page.locator('#http-url').fill('');
    const codes = await waitFor('status codes', async () => {
      const opt = await page.evaluate(
        () =>
          (window.tacmeshCharts['http-status']?.getOption() as { xAxis: { data: string[] }[] } | undefined)
            ?.xAxis[0]?.data,
      );
      return opt && ['200', '404', '500', '503'].every((c) => opt.includes(c)) ? opt : undefined;
    });
    assert.ok(codes.includes('200'));
    await sleep(1500);
    await shot('http');
  });

  test('the Services page: the graph of declared services coloured by health, a series with its breaches', async () => {
    const { ca, cb } = rig.ip;
    // Each service on a port of its own: the map test's load (with its 500s) still runs
    // against cb and n2, and must not count as these services' traffic.
    const c2 = new Tool(rig.spawnIn('cb', toolPath('http'), ['serve', '8080']));
    const logistics = new Tool(rig.spawnIn('cb', toolPath('http'), ['serve', '8081']));
    stops.push(
      () => c2.child.kill(),
      () => logistics.child.kill(),
    );
    await c2.line('ready');
    await logistics.line('ready');
    const put = await rig.api<{ services: string[] }>('services', {
      method: 'PUT',
      body: JSON.stringify([
        { name: 'ops', instances: [{ node: 'node1', address: ca, port: 0 }] },
        {
          name: 'c2',
          precedence: 'flash',
          instances: [{ node: 'node1', address: cb, port: 8080 }],
          objective: { targetP95Ms: 500, errorBudgetPct: 5 },
        },
        { name: 'logistics', instances: [{ node: 'node1', address: cb, port: 8081 }] },
      ]),
    });
    assert.deepEqual(put.body.services, ['c2', 'logistics', 'ops']);
    assert.deepEqual(await rig.get('ca', `${cb}:8080`, ['/s1', '/s2', '/status/503']), [200, 200, 503]);
    assert.deepEqual(await rig.get('ca', `${cb}:8081`, ['/s3', '/s4']), [200, 200]);
    await page.goto(`${rig.url}/#/services`);
    await page.locator('#services-rows').waitFor();
    // The roll-up into histograms takes whole 10 s periods once their responses are in.
    const edges = await waitFor(
      'both edges on the graph',
      async () => {
        const opt = await page.evaluate(
          () =>
            (
              window.tacmeshCharts.services?.getOption() as
                | { series: { links: { source: string; target: string; label: string }[] }[] }
                | undefined
            )?.series[0]?.links,
        );
        // all three of c2's requests rolled up (they may straddle two periods)
        return opt?.length === 2 && opt.some((e) => e.target === 'c2' && / 33 % /.test(e.label))
          ? opt
          : undefined;
      },
      45_000,
    );
    assert.deepEqual(edges.map((e) => `${e.source}→${e.target}`).sort(), ['ops→c2', 'ops→logistics']);
    assert.equal(
      await page.locator('#services-rows tr[data-service="c2"]').getAttribute('data-health'),
      'failing',
    );
    assert.equal(
      await page.locator('#services-rows tr[data-service="logistics"]').getAttribute('data-health'),
      'ok',
    );
    await page.locator('#services-rows tr[data-service="c2"]').click();
    await page.locator('#service-breaches li.breach').first().waitFor({ timeout: 10_000 });
    assert.match((await page.locator('#service-breaches').textContent()) ?? '', /errors 33\.33 % > 5 %/);
    await sleep(1000);
    await shot('services');
  });

  test("an operator's sampling change reaches the node, which reports applying it", async () => {
    await page.goto(`${rig.url}/#/nodes`);
    const form = page.locator('form.monitor-form[data-node="node1"]');
    await form.waitFor();
    const before = Number(await form.getAttribute('data-version'));
    await form.locator('input[name=sample]').fill('7');
    await form.locator('button[type=submit]').click();
    await waitFor(
      'the node to apply the new settings',
      async () => {
        const v = Number(await form.getAttribute('data-version'));
        const applied = Number(await form.getAttribute('data-applied'));
        return v > before && applied === v ? true : undefined;
      },
      10_000,
    );
    await form.locator('.apply-state', { hasText: 'applied by the node' }).waitFor();
    // What the node's agent reports (drift and repair) is listed with the node.
    await rig.tower.registry.event({
      node: 'node1',
      timeMs: Date.now(),
      entity: 'bridge br-ops',
      problem: 'link down',
      action: 'set up',
      ok: true,
      cause: 'administratively down',
      error: '',
      tookMs: 42,
    });
    await page
      .locator('section.node[data-node="node1"] tr.event', { hasText: 'br-ops' })
      .waitFor({ timeout: 5000 });
    // The node's own log line: it wrote sample=7 into its maps.
    await waitFor(
      'the node log',
      async () =>
        /settings applied[^\n]*"sample":7|"sample":7[^\n]*settings applied/.test(rig.nodeLog)
          ? true
          : undefined,
      5000,
    );
    assert.equal((await rig.api<{ monitor: { sample: number } }[]>('nodes')).body[0]?.monitor.sample, 7);
    const card = page.locator('section.node[data-node="node1"]');
    assert.match((await card.textContent()) ?? '', /10\.77\.151\.0\/24/);
    assert.ok((await card.locator('.iface').count()) >= 4, 'the monitored interfaces are listed');
    await shot('nodes');
  });

  test('live: the feed pushes at least once a second, and the overview follows it', async () => {
    await page.goto(`${rig.url}/#/overview`);
    await page.locator('#pie-all .pie-chart canvas').waitFor();
    const count = () => page.locator('#live-status').getAttribute('data-updates').then(Number);
    const n0 = await count();
    await sleep(3000);
    const n1 = await count();
    assert.ok(n1 - n0 >= 3, `${n1 - n0} live updates in 3 s`);
    assert.match((await page.locator('#kpi-flows .kpi-sub').textContent()) ?? '', /records\/s/);
    await sleep(2000);
    await shot('overview');
  });

  test('the time window: a preset is a snapshot, custom asks for its ends, live follows again', async () => {
    await page.locator('#window-picker button[data-mode="1h"]').click();
    await page.locator('#live-status', { hasText: 'snapshot' }).waitFor();
    const conv = Number(await page.locator('#kpi-conversations .kpi-value').textContent());
    assert.ok(conv >= 14, `the last hour holds everything sent (${conv} conversations)`);
    await page.locator('#window-picker button[data-mode="custom"]').click();
    await page.locator('#custom-from').waitFor();
    // A window before anything was sent: the page says what is missing instead of drawing nothing.
    await page.locator('#custom-from').fill('2020-01-01T00:00');
    await page.locator('#custom-to').fill('2020-01-01T01:00');
    await page.locator('#window-picker form.custom button').click();
    await page.locator('#pie-all .empty', { hasText: 'No flow records in this window' }).waitFor();
    await page.locator('#throughput-chart .empty').waitFor();
    await shot('overview-empty');
    await page.locator('#window-picker button[data-mode="live"]').click();
    await page.locator('#live-status', { hasText: 'live ·' }).waitFor();
  });

  test('a viewer sees the monitoring settings read-only', async () => {
    await page.locator('#user button').click();
    await page.locator('#token').waitFor();
    await login(page, rig, rig.viewer);
    await page.goto(`${rig.url}/#/nodes`);
    const form = page.locator('form.monitor-form[data-node="node1"]');
    await form.waitFor();
    assert.equal(await form.locator('input[name=sample]').isDisabled(), true);
    assert.equal(await form.locator('button[type=submit]').count(), 0);
    const put = await rig.api('nodes/node1/monitoring', {
      method: 'PUT',
      body: '{"sample":3}',
      token: rig.viewer,
    });
    assert.equal(put.status, 403);
  });

  test('no page raised a script error, and no live stream was left open behind the page', async () => {
    assert.deepEqual(pageErrors, []);
    // The page re-opened its feed on every filter change and sign-in; only the current one is left.
    await waitFor(
      'closed streams to be dropped',
      async () => (rig.tower.live.clients === 1 ? true : undefined),
      5000,
    ).catch(() => assert.fail(`${rig.tower.live.clients} live subscribers for one page`));
  });
});
