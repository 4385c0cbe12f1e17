/**
 * The node's route sources, as pure logic and against a peer on a unix socket: babeld's
 * lines (as babeld 1.12.1 writes them in the testbed) into a table, the table into next hops
 * named by the neighbour's address, since when each next hop holds, the kernel's JSON, and a
 * peer that is not babeld. babeld itself is read in the testbed test (src/testbed/testbed.test.ts),
 * the kernel's table in mesh.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BabelMonitor, BabelTable, parseLine } from './babel.js';
import { parseIpRoutes } from './kernel.js';
import { babelRoutes, RouteBook } from './watcher.js';

const BANNER = 'BABEL 1.0\nversion babeld-1.12.1\nhost vm\nmy-id 18:9e:54:2a:06:cc:3e:aa\nok\n';
const DUMP = [
  'add interface mesh-n2 up true ipv6 fe80::e4cb:15ff:feb6:fd49 ipv4 10.77.200.1',
  'add neighbour 5638d8704100 address fe80::4c16:b4ff:feae:f964 if mesh-n2 reach ffff ureach 0000 rxcost 256 txcost 256 cost 256',
  'add xroute 10.77.11.0/24-0.0.0.0/0 prefix 10.77.11.0/24 from 0.0.0.0/0 metric 0',
  'add route 5638d8704320 prefix 10.77.21.0/24 from 0.0.0.0/0 installed yes id 98:84:25:7a:c9:a2:80:26 metric 256 refmetric 0 via fe80::4c16:b4ff:feae:f964 if mesh-n2',
  'add route 5638d8708490 prefix 10.77.21.0/24 from 0.0.0.0/0 installed no id 98:84:25:7a:c9:a2:80:26 metric 512 refmetric 256 via fe80::f0be:e9ff:feb2:4d90 if mesh-n3',
  'add route 5638d87083d0 prefix 10.77.41.0/24 from 0.0.0.0/0 installed yes id 2c:63:fe:0c:fb:83:b2:ba metric 520 refmetric 262 via fe80::f0be:e9ff:feb2:4d90 if mesh-n3',
  'add route 5638d87083e0 prefix 10.77.51.0/24 from 10.77.0.0/16 installed yes id 2c:63:fe:0c:fb:83:b2:ba metric 256 refmetric 0 via fe80::f0be:e9ff:feb2:4d90 if mesh-n3',
];
const NEIGHBOURS = new Map([
  ['mesh-n2', '10.77.200.2'],
  ['mesh-n3', '10.77.200.18'],
]);

test("babeld's lines make a table of its installed routes and own prefixes, next hops by the neighbour's address", () => {
  const table = new BabelTable();
  for (const line of DUMP) {
    const e = parseLine(line);
    assert.ok(e, line);
    table.apply(e);
  }
  assert.equal(parseLine('ok'), undefined);
  assert.equal(parseLine('BABEL 1.0'), undefined);
  const byPrefix = (t: BabelTable) =>
    Object.fromEntries(babelRoutes(t, NEIGHBOURS).map((r) => [r.prefix, `${r.via}@${r.iface} ${r.metric}`]));
  assert.deepEqual(
    byPrefix(table),
    {
      '10.77.11.0/24': '@ 0',
      '10.77.21.0/24': '10.77.200.2@mesh-n2 256',
      '10.77.41.0/24': '10.77.200.18@mesh-n3 520',
    },
    'the installed route of each prefix; a source-specific route is not a destination route',
  );
  // The direct route to 10.77.41.0/24 arrives and babeld switches to it: two change lines.
  const lines = [
    'add route 5638d8702450 prefix 10.77.41.0/24 from 0.0.0.0/0 installed no id 2c:63:fe:0c:fb:83:b2:ba metric 256 refmetric 0 via fe80::9820:ceff:fe2f:9048 if mesh-n4',
    'change route 5638d87083d0 prefix 10.77.41.0/24 from 0.0.0.0/0 installed no id 2c:63:fe:0c:fb:83:b2:ba metric 512 refmetric 256 via fe80::f0be:e9ff:feb2:4d90 if mesh-n3',
    'change route 5638d8702450 prefix 10.77.41.0/24 from 0.0.0.0/0 installed yes id 2c:63:fe:0c:fb:83:b2:ba metric 256 refmetric 0 via fe80::9820:ceff:fe2f:9048 if mesh-n4',
    'flush route 5638d8704320 prefix 10.77.21.0/24 from 0.0.0.0/0 installed yes id 98:84:25:7a:c9:a2:80:26 metric 65535 refmetric 65535 via fe80::4c16:b4ff:feae:f964 if mesh-n2',
  ];
  for (const line of lines) table.apply(parseLine(line) as NonNullable<ReturnType<typeof parseLine>>);
  assert.deepEqual(
    byPrefix(table),
    {
      '10.77.11.0/24': '@ 0',
      '10.77.41.0/24': 'fe80::9820:ceff:fe2f:9048@mesh-n4 256',
    },
    "an interface that is no radio link of ours keeps babeld's own address for the neighbour",
  );
});

test('a next hop keeps its since until it changes; a report is due when a next hop or the set of destinations changes', () => {
  const book = new RouteBook();
  const r = (prefix: string, via: string, metric = 256) => ({ prefix, via, iface: 'mesh-x', metric });
  assert.equal(
    book.update([r('10.77.21.0/24', '10.77.200.2'), r('10.77.31.0/24', '10.77.200.18')], 1000),
    true,
  );
  assert.equal(
    book.update([r('10.77.21.0/24', '10.77.200.2', 300), r('10.77.31.0/24', '10.77.200.18')], 2000),
    false,
    'a metric alone is no change',
  );
  assert.equal(
    book.update([r('10.77.21.0/24', '10.77.200.18', 512), r('10.77.31.0/24', '10.77.200.18')], 3000),
    true,
  );
  assert.deepEqual(
    book.entries().map((e) => [e.prefix, e.via, e.metric, e.sinceMs]),
    [
      ['10.77.21.0/24', '10.77.200.18', 512, 3000],
      ['10.77.31.0/24', '10.77.200.18', 256, 1000],
    ],
  );
  assert.equal(book.update([r('10.77.31.0/24', '10.77.200.18')], 4000), true, 'a destination gone');
  assert.equal(
    book.update([r('10.77.31.0/24', '10.77.200.2', 20), r('10.77.31.0/24', '10.77.200.18', 10)], 5000),
    false,
    'of two routes to one destination the lower metric wins',
  );
});

test("the kernel's JSON: default, host, connected and multipath routes; no unreachable", () => {
  const routes = parseIpRoutes(
    JSON.stringify([
      { dst: 'default', gateway: '10.77.98.2', dev: 'ext0', flags: [] },
      { dst: '10.77.21.0/24', gateway: '10.77.200.2', dev: 'mesh-n2', protocol: 'babel', flags: ['onlink'] },
      { dst: '10.77.200.0/30', dev: 'mesh-n2', protocol: 'kernel', scope: 'link', prefsrc: '10.77.200.1' },
      { dst: '10.77.9.9', gateway: '10.77.200.2', dev: 'mesh-n2', metric: 20 },
      { type: 'unreachable', dst: '10.77.66.0/24', flags: [] },
      {
        dst: '10.77.77.0/24',
        nexthops: [
          { gateway: '10.77.200.18', dev: 'mesh-n3' },
          { gateway: '10.77.200.2', dev: 'mesh-n2' },
        ],
      },
    ]),
  );
  assert.deepEqual(routes, [
    { prefix: '0.0.0.0/0', via: '10.77.98.2', iface: 'ext0', metric: 0 },
    { prefix: '10.77.21.0/24', via: '10.77.200.2', iface: 'mesh-n2', metric: 0 },
    { prefix: '10.77.200.0/30', via: '', iface: 'mesh-n2', metric: 0 },
    { prefix: '10.77.9.9/32', via: '10.77.200.2', iface: 'mesh-n2', metric: 20 },
    { prefix: '10.77.77.0/24', via: '10.77.200.18', iface: 'mesh-n3', metric: 0 },
  ]);
  assert.throws(() => parseIpRoutes('{"dst": 1}'), /did not give a list/);
});

/** A peer on a unix socket that writes `script` to whoever connects once it reads "monitor". */
async function peer(
  banner: string,
  afterMonitor: string[],
): Promise<{ path: string; close: () => void; sockets: Socket[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-babel-'));
  const path = join(dir, 'babeld.sock');
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    s.write(banner);
    s.on('data', (d) => {
      if (d.toString().includes('monitor\n')) for (const chunk of afterMonitor) s.write(chunk);
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return {
    path,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const once = <T>(m: BabelMonitor, event: 'ready' | 'change' | 'down') =>
  new Promise<T>((resolve) => m.once(event, (...args: unknown[]) => resolve(args[0] as T)));

test('a monitor session: ready after the dump, a change per route line, down when babeld goes', async () => {
  const p = await peer(BANNER, [`${DUMP.join('\n')}\nok\n`]);
  const m = new BabelMonitor({ path: p.path });
  try {
    const ready = once(m, 'ready');
    m.open();
    await ready;
    assert.equal(babelRoutes(m.table, NEIGHBOURS).length, 3);
    const change = once(m, 'change');
    p.sockets[0]?.write(
      'flush route 5638d87083d0 prefix 10.77.41.0/24 from 0.0.0.0/0 installed yes id 2c:63:fe:0c:fb:83:b2:ba metric 65535 refmetric 65535 via fe80::f0be:e9ff:feb2:4d90 if mesh-n3\n',
    );
    await change;
    assert.equal(babelRoutes(m.table, NEIGHBOURS).length, 2);
    const down = once<string>(m, 'down');
    p.sockets[0]?.destroy();
    assert.match(await down, /closed/);
    assert.equal(m.table.routes.size, 0, 'nothing of a gone session is kept');
  } finally {
    m.close();
    p.close();
  }
});

test('a peer that is not babeld, or sends an endless line, ends the session with the reason', async () => {
  const http = await peer('HTTP/1.1 400 Bad Request\r\n\r\n', []);
  const flood = await peer(BANNER, [`add route ${'x'.repeat(10_000)}`]);
  try {
    const a = new BabelMonitor({ path: http.path });
    const aDown = once<string>(a, 'down');
    a.open();
    assert.match(await aDown, /is not babeld's local protocol/);
    const b = new BabelMonitor({ path: flood.path });
    const bDown = once<string>(b, 'down');
    b.open();
    assert.match(await bDown, /a line longer than 4096 bytes/);
    const c = new BabelMonitor({ path: join(tmpdir(), 'no-such-babeld.sock') });
    const cDown = once<string>(c, 'down');
    c.open();
    assert.match(await cDown, /ENOENT/);
  } finally {
    http.close();
    flood.close();
  }
});
