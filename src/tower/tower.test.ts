import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { type Influxd, startInfluxd } from '../../test/support/influxd.js';
import { mgmtVeth } from '../../test/support/mgmt.js';
import { bpfArgs } from '../../test/support/node-tower.js';
import { Tool, toolPath } from '../../test/support/tools/index.js';
import { Lab } from '../netlab/lab.js';
import { initCa, issue } from '../pki/ca.js';
import { createToken } from './api/tokens.js';
import type { TowerConfig } from './config.js';
import { Tower } from './tower.js';

const BIN = new URL('../../bin/tacmesh.js', import.meta.url).pathname;
const MGMT_TOWER = '10.77.68.254';
// biome-ignore lint/suspicious/noExplicitAny: the API's JSON, checked field by field below
type Json = any;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One node namespace (n1) routing for: a slice bridge with two containers ca, cb
 * (10.77.61.0/24, node1's subnet), a stand-in for node2's subnet (n2, 10.77.62.0/24, from the
 * site file) and an external network (ext, 10.77.69.0/24). A management veth joins n1 to the
 * tower, which runs in this process on the host side of it.
 */
describe('tower core: a real node, real traffic, mTLS, DuckDB, InfluxDB, query API', () => {
  let lab: Lab;
  let dir: string;
  let tower: Tower;
  let config: TowerConfig;
  let influx: Influxd;
  let n1: string;
  let ca: string;
  let nodeProc: ChildProcess | undefined;
  let operator: string;
  let viewer: string;
  let monitored: string[];

  /** The API over HTTPS, trusting only our CA. */
  async function api(path: string, init: { method?: string; body?: string; token?: string | null } = {}) {
    const token = init.token === undefined ? operator : init.token;
    return new Promise<{ status: number; body: Json }>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port: tower.api.port,
          path: `/api/v1/${path}`,
          method: init.method ?? 'GET',
          ca: readFileSync(`${dir}/pki/ca.crt`),
          servername: 'localhost',
          headers: {
            'content-type': 'application/json',
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => {
            text += d.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        },
      );
      req.on('error', reject);
      req.end(init.body);
    });
  }

  function startNode(name: string, extra: string[] = []): Tool {
    const args = [
      BIN,
      'node',
      'run',
      '--name',
      name,
      '--iface',
      ...monitored,
      '--tower',
      `${MGMT_TOWER}:${tower.controlPort}`,
      '--pki',
      `${dir}/pki`,
      '--state-dir',
      `${dir}/state-${name}`,
      '--mgmt-iface',
      lab.ifname('mg'),
      '--subnet',
      '10.77.61.0/24',
      '--position',
      '37.55,126.99',
      ...bpfArgs(dir), // the node loads only signed eBPF objects
      ...extra,
    ];
    return new Tool(lab.spawn(n1, process.execPath, args));
  }

  async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(250);
    }
  }

  before(async () => {
    dir = mkdtempSync('/tmp/tacmesh-tower-test-');
    await initCa(`${dir}/pki`);
    await issue(`${dir}/pki`, 'tower', 'tower', { altNames: [MGMT_TOWER] });
    await issue(`${dir}/pki`, 'node', 'node1');
    await issue(`${dir}/pki`, 'node', 'stale', {
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      days: 2,
    });
    await initCa(`${dir}/rogue`);
    await issue(`${dir}/rogue`, 'node', 'node1');
    operator = createToken(`${dir}/tokens.yaml`, 'op', 'operator');
    viewer = createToken(`${dir}/tokens.yaml`, 'watcher', 'viewer');
    writeFileSync(
      `${dir}/site.yaml`,
      'subnets:\n  - { cidr: 10.77.62.0/24, node: node2 }\nplaces:\n  - { cidr: 10.77.69.0/24, label: HQ, lat: 36.35, lon: 127.38 }\n',
    );
    influx = await startInfluxd();

    lab = new Lab();
    n1 = await lab.netns('n1', { ipv6: false });
    ca = await lab.netns('ca', { ipv6: false });
    const cb = await lab.netns('cb', { ipv6: false });
    const n2 = await lab.netns('n2', { ipv6: false });
    const ext = await lab.netns('ext', { ipv6: false });
    await lab.exec(n1, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    const br = await lab.bridge(n1, lab.ifname('br'), '10.77.61.254/24');
    const pa = await lab.veth({ netns: n1, name: lab.ifname('pa') }, { netns: ca, addr: '10.77.61.1/24' });
    const pb = await lab.veth({ netns: n1, name: lab.ifname('pb') }, { netns: cb, addr: '10.77.61.2/24' });
    await lab.enslave(n1, pa.a, br);
    await lab.enslave(n1, pb.a, br);
    const to2 = await lab.veth(
      { netns: n1, name: lab.ifname('t2'), addr: '10.77.62.254/24' },
      { netns: n2, addr: '10.77.62.1/24' },
    );
    const tox = await lab.veth(
      { netns: n1, name: lab.ifname('tx'), addr: '10.77.69.254/24' },
      { netns: ext, addr: '10.77.69.1/24' },
    );
    for (const [ns, gw] of [
      [ca, '10.77.61.254'],
      [cb, '10.77.61.254'],
      [n2, '10.77.62.254'],
      [ext, '10.77.69.254'],
    ] as const) {
      await lab.ip(ns, 'route', 'add', 'default', 'via', gw);
    }
    // The management network: n1 ↔ this (host) namespace, apart from the data links.
    await mgmtVeth(lab, n1, `${MGMT_TOWER}/24`, '10.77.68.1/24');
    monitored = [pa.a, pb.a, to2.a, tox.a];
    for (const ns of [cb, n2, ext])
      await new Tool(lab.spawnNode(ns, toolPath('http'), ['serve', '80'])).line('ready');

    config = {
      control: { listen: `${MGMT_TOWER}:0` },
      api: { listen: '127.0.0.1:0' },
      pki: { dir: `${dir}/pki`, name: 'tower' },
      store: { path: `${dir}/tower.duckdb`, retentionDays: 7, rollupRetentionDays: 90 },
      tokens: `${dir}/tokens.yaml`,
      site: `${dir}/site.yaml`,
      influx: { url: influx.url, database: 'tacmesh' },
    };
    tower = await Tower.start(config);
    config.control.listen = `${MGMT_TOWER}:${tower.controlPort}`; // a restart comes back on the same port
    const node = startNode('node1');
    nodeProc = node.child;
    node.child.stderr?.on('data', (d) => process.stderr.write(`[node1] ${d}`));
    await waitFor('node1 connected', async () => {
      const { body } = await api('nodes');
      return body.find((n: { name: string; connected: boolean }) => n.name === 'node1' && n.connected);
    });
  });

  after(async () => {
    nodeProc?.kill('SIGTERM');
    await lab?.cleanup();
    await run('ip', ['link', 'del', lab.ifname('mh')]).catch(() => undefined);
    await tower?.stop();
    await influx?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function requests(base: string, paths: string[]) {
    return (
      await new Tool(lab.spawnNode(ca, toolPath('http'), ['get', base, ...paths])).result<{
        statuses: number[];
      }>()
    ).statuses;
  }

  test('the API answers match the traffic sent, and the pies classify intra / inter / external', async () => {
    const tag = `t${Date.now()}`;
    assert.deepEqual(await requests('http://10.77.61.2', [`/${tag}/intra`, '/status/404']), [200, 404]);
    assert.deepEqual(await requests('http://10.77.62.1', [`/${tag}/inter`, '/status/500']), [200, 500]);
    assert.deepEqual(await requests('http://10.77.69.1', [`/${tag}/external`]), [200]);
    const http = await waitFor('HTTP rows', async () => {
      const { body } = await api(`http?url=${tag}`);
      const urls = new Set(body.map((h: Json) => h.url));
      return urls.size >= 3 ? body : undefined;
    });
    assert.equal(http.length, 3, 'each request once, though the intra one crossed two switch ports');
    const byUrl = new Map<string, Json>(http.map((h: Json) => [h.url, h]));
    assert.equal(byUrl.get(`/${tag}/intra`)?.status, 200);
    assert.equal(byUrl.get(`/${tag}/intra`)?.locality, 'intra');
    assert.equal(byUrl.get(`/${tag}/inter`)?.locality, 'inter');
    assert.equal(byUrl.get(`/${tag}/external`)?.locality, 'external');
    assert.equal(byUrl.get(`/${tag}/external`)?.host, '10.77.69.1');
    const statuses = (await api('http/status')).body as { status: number; count: number }[];
    for (const s of [200, 404, 500])
      assert.ok(
        statuses.some((x) => x.status === s && x.count > 0),
        `status ${s} counted`,
      );

    const pies = (await api('pies')).body as Record<string, { ip: string }[]>;
    const ips = (k: string) => new Set((pies[k] ?? []).map((s) => s.ip));
    assert.deepEqual([...ips('intra')].sort(), ['10.77.61.1', '10.77.61.2']);
    assert.deepEqual([...ips('inter')].sort(), ['10.77.61.1', '10.77.62.1']);
    assert.deepEqual([...ips('external')].sort(), ['10.77.61.1', '10.77.69.1']);
    for (const ip of ['10.77.61.1', '10.77.61.2', '10.77.62.1', '10.77.69.1']) assert.ok(ips('all').has(ip));

    const map = (await api('map')).body;
    const extPair = map.pairs.find((p: { dst: string }) => p.dst === '10.77.69.1');
    assert.deepEqual(extPair?.dstPlace.position, { lat: 36.35, lon: 127.38 }, 'site-file place');
    assert.equal(extPair?.dstPlace.label, 'HQ');
    assert.deepEqual(
      extPair?.srcPlace.position,
      { lat: 37.55, lon: 126.99 },
      'the node position from its hello',
    );
    const summary = (await api('summary')).body;
    assert.ok(summary.httpRequests >= 5 && summary.httpErrors >= 2, JSON.stringify(summary));
    const nodes = (await api('nodes')).body;
    assert.deepEqual(nodes.find((n: { name: string }) => n.name === 'node1')?.subnets, ['10.77.61.0/24']);
    const talkers = (await api('talkers')).body;
    assert.ok(talkers.length > 0 && talkers[0].bytes > 0);
    const tp = (await api('throughput')).body;
    assert.ok(Object.keys(tp.series).includes('node1'));
  });

  test('tokens: none is refused, a viewer cannot change settings, bad input is named', async () => {
    assert.equal((await api('nodes', { token: null })).status, 401);
    const put = await api('nodes/node1/monitoring', { method: 'PUT', body: '{"sample":5}', token: viewer });
    assert.equal(put.status, 403);
    const bad = await api('nodes/node1/monitoring', { method: 'PUT', body: '{"sample":0}' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /sample/);
    assert.equal((await api('pies?last=forever')).status, 400);
  });

  test("an operator's monitoring change reaches the node and takes effect", async () => {
    const put = await api('nodes/node1/monitoring', { method: 'PUT', body: '{"l7":false}' });
    assert.equal(put.status, 200);
    await waitFor('the node applied the change', async () => {
      const n = (await api('nodes')).body.find((x: { name: string }) => x.name === 'node1');
      return n?.monitorApplied && n.status?.monitorVersion === put.body.version ? true : undefined;
    });
    const tag = `off${Date.now()}`;
    await requests('http://10.77.61.2', [`/${tag}`]);
    await sleep(2500);
    assert.equal((await api(`http?url=${tag}`)).body.length, 0, 'no HTTP events with L7 off');
    await api('nodes/node1/monitoring', { method: 'PUT', body: '{"l7":true}' });
  });

  test('a node with a foreign CA, an expired certificate, or a name not its own is refused', async () => {
    const before = (await api('health')).body.control;
    const rogue = startNode('node1', [
      '--cert',
      `${dir}/rogue/node1.crt`,
      '--key',
      `${dir}/rogue/node1.key`,
      '--state-dir',
      `${dir}/s-rogue`,
    ]);
    const stale = startNode('stale', ['--state-dir', `${dir}/s-stale`]);
    const liar = startNode('node9', [
      '--cert',
      `${dir}/pki/node1.crt`,
      '--key',
      `${dir}/pki/node1.key`,
      '--state-dir',
      `${dir}/s-liar`,
    ]);
    try {
      await waitFor('refusals', async () => {
        const c = (await api('health')).body.control;
        return c.tlsRefused >= before.tlsRefused + 2 && c.identityRefused >= before.identityRefused + 1
          ? c
          : undefined;
      });
      const names = (await api('nodes')).body.map((n: { name: string }) => n.name);
      assert.ok(
        !names.includes('node9') && !names.includes('stale'),
        `refused nodes are not registered: ${names}`,
      );
    } finally {
      for (const t of [rogue, stale, liar]) t.child.kill('SIGTERM');
    }
  });

  test('the tower restarted mid-stream loses nothing, stores nothing twice, and InfluxDB has what DuckDB has', async () => {
    const load = lab.spawnNode(ca, toolPath('http'), [
      'load',
      'http://10.77.61.2',
      '20',
      '/a',
      '/b',
      '/status/503',
    ]);
    await sleep(3000);
    await tower.stop();
    await sleep(4000); // the node keeps monitoring and queues its batches
    tower = await Tower.start(config);
    await sleep(4000);
    load.kill('SIGTERM');
    await sleep(3000);
    const db = tower.store.reader;
    const r = await db.runAndReadAll(`
      WITH s AS (SELECT seq FROM flows WHERE node = 'node1' UNION ALL SELECT seq FROM http WHERE node = 'node1'
                 UNION ALL SELECT seq FROM monitor_stats WHERE node = 'node1')
      SELECT count(*)::DOUBLE AS n, count(DISTINCT seq)::DOUBLE AS d, min(seq)::DOUBLE AS lo, max(seq)::DOUBLE AS hi FROM s`);
    const [row] = r.getRowObjectsJS() as { n: number; d: number; lo: number; hi: number }[];
    assert.ok(row && row.n > 100, 'records were stored');
    assert.equal(row.n, row.d, 'no record stored twice');
    assert.equal(row.lo, 1, 'from the first record');
    assert.equal(row.d, row.hi - row.lo + 1, 'with no gap: nothing lost across the restart');
    assert.ok((await api('health')).body.control.recordsStored > 0);

    // Every flow row is in InfluxDB too.
    await tower.influx?.flush();
    const [flowRows] = (
      await db.runAndReadAll(`SELECT count(*)::DOUBLE AS n, sum(bytes)::DOUBLE AS b FROM flows`)
    ).getRowObjectsJS() as {
      n: number;
      b: number;
    }[];
    const q = (await tower.influx?.query('SELECT count(bytes), sum(bytes) FROM flow')) as {
      results: { series?: { values: [string, number, number][] }[] }[];
    };
    const values = q.results[0]?.series?.[0]?.values[0];
    assert.equal(values?.[1], flowRows?.n, 'InfluxDB has as many flow points as DuckDB has rows');
    assert.equal(values?.[2], flowRows?.b, 'and the same bytes');
  });
});

import { run } from '../shared/exec.js';
