import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Tool, toolPath } from '../../../test/support/tools/index.js';
import { Lab } from '../../netlab/lab.js';
import { run } from '../../shared/exec.js';
import { Monitor, type MonitorSink } from './monitor.js';
import type { FlowRecord, HttpEvent, MonitorStats } from './records.js';

/** Collects what a monitor emits. */
class Collector implements MonitorSink {
  flowRecords: FlowRecord[] = [];
  httpEvents: HttpEvent[] = [];
  last: MonitorStats | undefined;
  flows(records: FlowRecord[]) {
    this.flowRecords.push(...records);
  }
  http(event: HttpEvent) {
    this.httpEvents.push(event);
  }
  stats(stats: MonitorStats) {
    this.last = stats;
  }
  sum(filter: (r: FlowRecord) => boolean) {
    const hits = this.flowRecords.filter(filter);
    return { packets: hits.reduce((s, r) => s + r.packets, 0), bytes: hits.reduce((s, r) => s + r.bytes, 0) };
  }
  reset() {
    this.flowRecords = [];
    this.httpEvents = [];
  }
}

const settle = (ms = 300) => new Promise((r) => setTimeout(r, ms));

async function linkStats(lab: Lab, ns: string, iface: string) {
  const { stdout } = await lab.ip(ns, '-s', '-j', 'link', 'show', 'dev', iface);
  const [info] = JSON.parse(stdout) as { stats64: { rx: { bytes: number }; tx: { bytes: number } } }[];
  if (!info) throw new Error(`no ${iface}`);
  return { rxBytes: info.stats64.rx.bytes, txBytes: info.stats64.tx.bytes };
}

/** Segments TCP put on the wire: TcpOutSegs leaves out retransmissions, RetransSegs has them. */
async function tcpOutSegs(lab: Lab, ns: string): Promise<number> {
  const { stdout } = await lab.exec(ns, 'nstat', ['-asz', 'TcpOutSegs', 'TcpRetransSegs']);
  const out = /TcpOutSegs\s+(\d+)/.exec(stdout);
  const retrans = /TcpRetransSegs\s+(\d+)/.exec(stdout);
  if (!out || !retrans) throw new Error(`nstat printed no TcpOutSegs/TcpRetransSegs: ${stdout}`);
  return Number(out[1]) + Number(retrans[1]);
}

const PATHS = [
  '/',
  '/index.html',
  '/api/v1/items?id=42',
  '/status/404',
  '/status/500',
  '/status/302',
  '/status/201',
];
const EXPECTED_STATUS = [200, 200, 200, 404, 500, 302, 201];

describe('flowmon monitor (real kernel, namespaces, real traffic)', () => {
  let lab: Lab;
  let a: string;
  let b: string;
  let ifA: string;

  before(async () => {
    lab = new Lab();
    a = await lab.netns('a', { ipv6: false });
    b = await lab.netns('b', { ipv6: false });
    const veth = await lab.veth({ netns: a, addr: '10.77.30.1/24' }, { netns: b, addr: '10.77.30.2/24' });
    ifA = veth.a;
    await lab.staticNeighbours(
      { netns: a, iface: veth.a, ip: '10.77.30.1' },
      { netns: b, iface: veth.b, ip: '10.77.30.2' },
    );
    await new Tool(lab.spawnNode(b, toolPath('http'), ['serve', '8080'])).line('ready');
  });
  after(() => lab.cleanup());

  async function httpRequests(fromNs: string, base: string, paths = PATHS) {
    const { statuses } = await new Tool(
      lab.spawnNode(fromNs, toolPath('http'), ['get', base, ...paths]),
    ).result<{
      statuses: number[];
    }>();
    return statuses;
  }

  function assertEveryRequestSeen(events: HttpEvent[], iface: string, host: string) {
    const requests = events.filter((e) => e.kind === 'request' && e.iface === iface);
    const responses = events.filter((e) => e.kind === 'response' && e.iface === iface);
    for (const path of PATHS) {
      const hit = requests.find((e) => e.url === path);
      assert.ok(hit, `request ${path} seen on ${iface}`);
      assert.equal(hit.method, 'GET');
      assert.equal(hit.host, host);
      assert.equal(hit.truncated, false);
    }
    const statuses = responses.map((e) => e.status).sort();
    assert.deepEqual(statuses, [...EXPECTED_STATUS].sort(), `every status code seen on ${iface}`);
    // Each response belongs to the reverse flow of a request.
    for (const r of responses) {
      assert.ok(
        requests.some((q) => q.srcPort === r.dstPort && q.dst === r.src),
        'response matches a request flow',
      );
    }
  }

  test('exact packet and byte counts of a known TCP and UDP transfer', async () => {
    const sink = new Collector();
    const monitor = await Monitor.start(sink, { interfaces: [ifA], netns: a, intervalMs: 60_000 });
    try {
      const before = await linkStats(lab, a, ifA);
      const segsA0 = await tcpOutSegs(lab, a);
      const segsB0 = await tcpOutSegs(lab, b);
      const tcpSink = new Tool(lab.spawnNode(b, toolPath('tcp'), ['sink', '9000']));
      await tcpSink.line('ready');
      const size = 20 * 1024 * 1024;
      await new Tool(lab.spawnNode(a, toolPath('tcp'), ['send', '10.77.30.2', '9000', `${size}`])).result();
      assert.deepEqual(await tcpSink.result(), { bytes: size });
      await settle();
      monitor.tick();
      const afterStats = await linkStats(lab, a, ifA);
      const out = sink.sum((r) => r.direction === 'egress' && r.protocol === 6);
      const back = sink.sum((r) => r.direction === 'ingress' && r.protocol === 6);
      // Bytes: skb->len at the hook, the rule the interface counters follow.
      assert.equal(out.bytes, afterStats.txBytes - before.txBytes, 'egress bytes = the veth tx counter');
      assert.equal(back.bytes, afterStats.rxBytes - before.rxBytes, 'ingress bytes = the veth rx counter');
      // Packets: wire segments (GSO counted out), as TCP itself counts what it sent.
      assert.equal(
        out.packets,
        (await tcpOutSegs(lab, a)) - segsA0,
        'egress packets = TcpOutSegs of the sender',
      );
      assert.equal(
        back.packets,
        (await tcpOutSegs(lab, b)) - segsB0,
        'ingress packets = TcpOutSegs of the receiver',
      );
      assert.ok(out.packets > size / 1500, 'GSO super-packets were counted as their segments');

      sink.reset();
      const udpSink = new Tool(lab.spawnNode(b, toolPath('udp'), ['recv', '9001', '500']));
      await udpSink.line('ready');
      await new Tool(
        lab.spawnNode(a, toolPath('udp'), ['send', '10.77.30.2', '9001', '1000', '200']),
      ).result();
      assert.equal((await udpSink.result<{ received: number }>()).received, 1000);
      monitor.tick();
      const udp = sink.sum((r) => r.direction === 'egress' && r.protocol === 17 && r.dstPort === 9001);
      assert.deepEqual(udp, { packets: 1000, bytes: 1000 * (14 + 20 + 8 + 200) });
      const flow = sink.flowRecords.find((r) => r.protocol === 17 && r.direction === 'egress');
      assert.ok(flow);
      assert.equal(flow.src, '10.77.30.1');
      assert.equal(flow.dst, '10.77.30.2');
      assert.equal(flow.ipVersion, 4);
      assert.ok(
        flow.lastSeen >= flow.firstSeen && Math.abs(flow.lastSeen - Date.now()) < 60_000,
        'wall-clock times',
      );
    } finally {
      monitor.stop();
    }
  });

  test('every URL and status code of the requests, on a veth', async () => {
    const sink = new Collector();
    const monitor = await Monitor.start(sink, { interfaces: [ifA], netns: a, intervalMs: 60_000 });
    try {
      assert.deepEqual(await httpRequests(a, 'http://10.77.30.2:8080'), EXPECTED_STATUS);
      await settle(100);
      monitor.tick();
      assertEveryRequestSeen(sink.httpEvents, ifA, '10.77.30.2:8080');
      // A URL longer than the kernel's copy arrives cut, and says so.
      sink.reset();
      const long = `/long/${'x'.repeat(900)}`;
      await httpRequests(a, 'http://10.77.30.2:8080', [long]);
      await settle(100);
      monitor.tick();
      const cut = sink.httpEvents.find((e) => e.kind === 'request');
      assert.ok(cut?.truncated, 'flagged as truncated');
      assert.ok(long.startsWith(cut.url ?? '?') && (cut.url?.length ?? 0) > 400, 'a true prefix of the URL');
    } finally {
      monitor.stop();
    }
  });

  test('every request and response on one connection, between bulk responses', async () => {
    // The kernel reads a TCP payload only where a write can start (after a PSH): the next
    // message on a connection must still be seen after megabytes of GSO packets.
    const sink = new Collector();
    const monitor = await Monitor.start(sink, { interfaces: [ifA], netns: a, intervalMs: 60_000 });
    try {
      const paths = ['/bytes/4000000', '/status/404', '/bytes/3000000', '/after-bulk'];
      const { statuses } = await new Tool(
        lab.spawnNode(a, toolPath('http'), ['keep-alive', 'http://10.77.30.2:8080', ...paths]),
      ).result<{ statuses: number[] }>();
      assert.deepEqual(statuses, [200, 404, 200, 200]);
      await settle(100);
      monitor.tick();
      const requests = sink.httpEvents.filter((e) => e.kind === 'request' && e.iface === ifA);
      const responses = sink.httpEvents.filter((e) => e.kind === 'response' && e.iface === ifA);
      assert.deepEqual(
        requests.map((e) => e.url),
        paths,
      );
      assert.equal(new Set(requests.map((e) => e.srcPort)).size, 1, 'one connection');
      assert.deepEqual(
        responses.map((e) => e.status),
        statuses,
      );
    } finally {
      monitor.stop();
    }
  });

  test('on a bridge port of a slice switch, and from inside a container namespace', async () => {
    const node = await lab.netns('node', { ipv6: false });
    const c1 = await lab.netns('c1', { ipv6: false });
    const c2 = await lab.netns('c2', { ipv6: false });
    const br = await lab.bridge(node, lab.ifname('br'));
    const p1 = await lab.veth({ netns: node, name: lab.ifname('p1') }, { netns: c1, addr: '10.77.31.1/24' });
    const p2 = await lab.veth({ netns: node, name: lab.ifname('p2') }, { netns: c2, addr: '10.77.31.2/24' });
    await lab.enslave(node, p1.a, br);
    await lab.enslave(node, p2.a, br);
    await new Tool(lab.spawnNode(c2, toolPath('http'), ['serve', '80'])).line('ready');

    const sink = new Collector();
    const monitor = await Monitor.start(sink, { interfaces: [p1.a], netns: node, intervalMs: 60_000 });
    // The CLI, run inside the container, watching the container's own interface.
    const inside = new Tool(
      lab.spawn(c1, process.execPath, [
        new URL('../../../bin/tacmesh.js', import.meta.url).pathname,
        'monitor',
        '--unsigned', // the dev-machine mode; signed-objects.test.ts checks the signed one
        '--iface',
        p1.b,
        '--json',
        '--duration',
        '4',
        '--interval',
        '500',
      ]),
    );
    try {
      await settle(1500); // the CLI process starts and attaches
      assert.deepEqual(await httpRequests(c1, 'http://10.77.31.2'), EXPECTED_STATUS);
      await settle(100);
      monitor.tick();
      assertEveryRequestSeen(sink.httpEvents, p1.a, '10.77.31.2');
      await inside.exited;
      const lines = inside.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string } & HttpEvent);
      assertEveryRequestSeen(
        lines.filter((l) => l.type === 'http'),
        p1.b,
        '10.77.31.2',
      );
      assert.ok(lines.some((l) => l.type === 'flow'));
      assert.ok(lines.some((l) => l.type === 'stats'));
    } finally {
      monitor.stop();
    }
  });

  test('IPv6 flows and HTTP over IPv6', async () => {
    const x = await lab.netns('x6');
    const y = await lab.netns('y6');
    const veth = await lab.veth({ netns: x }, { netns: y });
    await lab.ip(x, 'addr', 'add', 'fd00:77::1/64', 'dev', veth.a, 'nodad');
    await lab.ip(y, 'addr', 'add', 'fd00:77::2/64', 'dev', veth.b, 'nodad');
    await new Tool(lab.spawnNode(y, toolPath('http'), ['serve', '8080', '::'])).line('ready');
    const sink = new Collector();
    const monitor = await Monitor.start(sink, { interfaces: [veth.a], netns: x, intervalMs: 60_000 });
    try {
      assert.deepEqual(await httpRequests(x, 'http://[fd00:77::2]:8080', ['/v6', '/status/404']), [200, 404]);
      await settle(100);
      monitor.tick();
      const flow = sink.flowRecords.find(
        (r) => r.protocol === 6 && r.direction === 'egress' && r.dstPort === 8080,
      );
      assert.ok(flow, 'a TCP flow over IPv6');
      assert.equal(flow.ipVersion, 6);
      assert.equal(flow.src, 'fd00:77::1');
      assert.equal(flow.dst, 'fd00:77::2');
      const req = sink.httpEvents.find((e) => e.url === '/v6');
      assert.equal(req?.ipVersion, 6);
      assert.ok(sink.httpEvents.some((e) => e.status === 404 && e.src === 'fd00:77::2'));
    } finally {
      monitor.stop();
    }
  });

  test('sampling and the L7 switch change at run time, with no reload', async () => {
    const sink = new Collector();
    const monitor = await Monitor.start(sink, { interfaces: [ifA], netns: a, intervalMs: 60_000 });
    try {
      const progId = monitor.flowmon.obj.program('flowmon_egress').id;
      monitor.configure({ l7: false });
      await httpRequests(a, 'http://10.77.30.2:8080');
      await settle(100);
      monitor.tick();
      assert.equal(sink.httpEvents.length, 0, 'L7 off: no HTTP events');
      assert.ok(sink.flowRecords.length > 0, 'flows are still accounted');

      monitor.configure({ l7: true, sample: 10 });
      const n = 300;
      const paths = Array.from({ length: n }, (_, i) => `/s/${i}`);
      await httpRequests(a, 'http://10.77.30.2:8080', paths);
      await settle(100);
      monitor.tick();
      const requests = sink.httpEvents.filter((e) => e.kind === 'request').length;
      // binomial(300, 0.1): mean 30, sd 5.2; 6 sd either side
      assert.ok(requests > 0 && requests < 62, `1 in 10 sampled: ${requests} of ${n}`);
      assert.ok((monitor.stats().l7SampledOut ?? 0) > 0, 'the sampled-out count moves');

      monitor.configure({ sample: 1 });
      sink.reset();
      await httpRequests(a, 'http://10.77.30.2:8080');
      await settle(100);
      monitor.tick();
      assertEveryRequestSeen(sink.httpEvents, ifA, '10.77.30.2:8080');
      assert.equal(
        monitor.flowmon.obj.program('flowmon_egress').id,
        progId,
        'the same program: nothing reloaded',
      );
    } finally {
      monitor.stop();
    }
  });

  test('a full flow table is survived and counted', async () => {
    const sink = new Collector();
    const monitor = await Monitor.start(sink, {
      interfaces: [ifA],
      netns: a,
      intervalMs: 60_000,
      maxFlows: 32,
    });
    try {
      // 100 UDP flows (one per source socket, all open at once: 100 source ports) against a table of 32.
      await lab.exec(a, process.execPath, [
        '-e',
        "const d=require('dgram');const s=Array.from({length:100},()=>d.createSocket('udp4'));let n=s.length;" +
          "for(const x of s)x.send('x',9100,'10.77.30.2',()=>{if(--n===0)for(const y of s)y.close()})",
      ]);
      monitor.tick();
      const stats = monitor.stats();
      assert.ok(stats.flowMapFull > 0, `overflow counted (${stats.flowMapFull})`);
      assert.ok(stats.activeFlows <= 32, 'never more flows than the table holds');
      // Still alive: HTTP is still seen.
      await httpRequests(a, 'http://10.77.30.2:8080', ['/after-full']);
      await settle(100);
      monitor.tick();
      assert.ok(sink.httpEvents.some((e) => e.url === '/after-full'));
    } finally {
      monitor.stop();
    }
  });

  test('garbage and truncated packets never break the program', async () => {
    const bin = `/tmp/tacmesh-rawsend-${process.pid}`;
    await run('clang', [
      '-O2',
      '-o',
      bin,
      new URL('../../../test/fixtures/rawsend.c', import.meta.url).pathname,
    ]);
    const sink = new Collector();
    const monitor = await Monitor.start(sink, { interfaces: [ifA], netns: a, intervalMs: 60_000 });
    try {
      const { stdout } = await lab.exec(a, bin, [ifA, '2000']);
      assert.equal(JSON.parse(stdout).sent, 20_000);
      monitor.tick();
      assert.ok(monitor.stats().malformed >= 10_000, `malformed counted: ${monitor.stats().malformed}`);
      // and it still counts real traffic exactly
      sink.reset();
      const udpSink = new Tool(lab.spawnNode(b, toolPath('udp'), ['recv', '9002', '500']));
      await udpSink.line('ready');
      await new Tool(
        lab.spawnNode(a, toolPath('udp'), ['send', '10.77.30.2', '9002', '500', '100']),
      ).result();
      await udpSink.result();
      monitor.tick();
      assert.deepEqual(
        sink.sum((r) => r.direction === 'egress' && r.dstPort === 9002),
        { packets: 500, bytes: 500 * 142 },
      );
    } finally {
      monitor.stop();
      rmSync(bin, { force: true });
    }
  });
});
