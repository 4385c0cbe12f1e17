import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DuckDBInstance, type DuckDBValue } from '@duckdb/node-api';
import type { FlowRow, HttpRow, IngestBatch, Locality } from '../model.js';
import { DuckStore } from '../store/duckdb.js';
import {
  CONVERSATION_SQL,
  conversationKey,
  counted,
  type Filter,
  filterSql,
  httpLineKey,
  httpLineSql,
} from './counting.js';
import { LiveFeed, type LiveFilter, type LiveUpdate } from './live.js';
import { summary } from './queries.js';

const now = Date.now();

/** What flow and HTTP rows of `node` share: one side of a TCP connection to port 80. */
const seenBy = (node: string) => ({
  node,
  seq: 0,
  iface: 'up0',
  ifaceKind: 'host' as const,
  direction: 'egress' as const,
  ipVersion: 4,
  src: '10.77.151.1',
  dst: '10.77.152.1',
  srcPort: 40000,
  dstPort: 80,
  locality: 'inter' as const,
});

function flow(node: string, over: Partial<FlowRow>): FlowRow {
  return {
    ...seenBy(node),
    timeMs: now - 5000,
    protocol: 6,
    packets: 2,
    bytes: 100,
    tcpFlags: 0x18,
    dscp: 0,
    firstSeenMs: now - 6000,
    srcNode: 'n1',
    dstNode: 'n2',
    ...over,
  };
}

function http(node: string, over: Partial<HttpRow>): HttpRow {
  return {
    ...seenBy(node),
    timeMs: now - 4000,
    response: false,
    method: 'GET',
    url: '/a',
    host: 'srv',
    status: 0,
    version: '1.1',
    truncated: false,
    ...over,
  };
}

const reply = { src: '10.77.152.1', dst: '10.77.151.1', srcPort: 80, dstPort: 40000 };
/** Traffic that never leaves its link: babel, mDNS, DHCP, duplicate address detection. */
const onLink = (node: string): FlowRow[] => [
  flow(node, { ipVersion: 6, src: 'fe80::1', dst: 'fe80::2', protocol: 17, srcPort: 6696, dstPort: 6696 }),
  flow(node, { ipVersion: 6, src: 'fe80::1', dst: 'ff02::1:6', protocol: 17, srcPort: 6696, dstPort: 6696 }),
  flow(node, { src: '10.77.151.1', dst: '224.0.0.251', protocol: 17, srcPort: 5353, dstPort: 5353 }),
  flow(node, { src: '10.77.151.9', dst: '255.255.255.255', protocol: 17, srcPort: 68, dstPort: 67 }),
  flow(node, { ipVersion: 6, src: '::', dst: 'ff02::1:ff00:1', protocol: 58, srcPort: 0, dstPort: 0x8700 }),
];

function batch(node: string, flows: FlowRow[], lines: HttpRow[], seq0: number): IngestBatch {
  let seq = seq0;
  const numbered = <T extends { seq: number }>(rows: T[]) => rows.map((r) => ({ ...r, seq: seq++ }));
  const f = numbered(flows);
  const h = numbered(lines);
  return { node, firstSeq: seq0, lastSeq: seq - 1, flows: f, http: h, stats: [], links: [], routes: [] };
}

/**
 * One connection from n1's slice to n2's, seen by both nodes on their way in and out, its
 * reply, one to an external server, an HTTP exchange both nodes saw (twice on n1: the switch
 * port and the uplink), and every node's on-link chatter.
 */
const BATCHES = [
  batch(
    'n1',
    [
      flow('n1', { iface: 'pa', direction: 'ingress' }),
      flow('n1', { iface: 'up0' }),
      flow('n1', { iface: 'up0', direction: 'ingress', ...reply, bytes: 60 }),
      flow('n1', { iface: 'pa', ...reply, bytes: 60 }),
      flow('n1', { dst: '198.51.100.7', dstPort: 443, bytes: 700, locality: 'external', dstNode: null }),
      ...onLink('n1'),
    ],
    [
      http('n1', { iface: 'pa', direction: 'ingress' }),
      http('n1', { iface: 'up0' }),
      http('n1', {
        iface: 'up0',
        direction: 'ingress',
        ...reply,
        response: true,
        status: 503,
        timeMs: now - 3990,
      }),
      http('n1', { iface: 'pa', ...reply, response: true, status: 503, timeMs: now - 3990 }),
      http('n1', { src: 'fe80::1', dst: 'fe80::2', ipVersion: 6 }),
    ],
    1,
  ),
  batch(
    'n2',
    [
      flow('n2', { iface: 'up0', direction: 'ingress' }),
      flow('n2', { iface: 'pb' }),
      flow('n2', { iface: 'pb', direction: 'ingress', ...reply, bytes: 60 }),
      flow('n2', { iface: 'up0', ...reply, bytes: 60 }),
      ...onLink('n2'),
    ],
    [
      http('n2', { iface: 'up0', direction: 'ingress' }),
      http('n2', { iface: 'up0', ...reply, response: true, status: 503, timeMs: now - 3990 }),
    ],
    1,
  ),
];

const FILTERS: LiveFilter[] = [
  {},
  { node: 'n1' },
  { iface: 'up0' },
  { locality: 'inter' },
  { locality: 'external' },
  { ip: '10.77.152.1' },
  { node: 'n2', ip: 'fe80::1' },
];

test('each rule says the same in SQL and as a predicate, on the same rows', async () => {
  const rows = BATCHES.flatMap((b) => b.flows);
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    await c.run(
      'CREATE TABLE t (i INTEGER, node VARCHAR, iface VARCHAR, src VARCHAR, dst VARCHAR, locality VARCHAR, src_port INTEGER, dst_port INTEGER, protocol INTEGER)',
    );
    for (const [i, r] of rows.entries())
      await c.run('INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
        i,
        r.node,
        r.iface,
        r.src,
        r.dst,
        r.locality,
        r.srcPort,
        r.dstPort,
        r.protocol,
      ]);
    for (const f of FILTERS as Filter[]) {
      const params: DuckDBValue[] = [];
      const sql = await c.runAndReadAll(
        `SELECT i FROM t WHERE ${filterSql(f, params).join(' AND ')} ORDER BY i`,
        params,
      );
      const js = [...rows.entries()].filter(([, r]) => counted(f, r)).map(([i]) => i);
      assert.deepEqual(
        sql.getRowObjectsJS().map((r) => r.i),
        js,
        `filter ${JSON.stringify(f)}`,
      );
    }
    const conversations = await c.runAndReadAll(
      `SELECT count(DISTINCT (${CONVERSATION_SQL}))::INTEGER AS n FROM t`,
    );
    assert.equal(conversations.getRowObjectsJS()[0]?.n, new Set(rows.map(conversationKey)).size);
    const lines = BATCHES.flatMap((b) => b.http);
    await c.run(
      'CREATE TABLE h (src VARCHAR, src_port INTEGER, dst VARCHAR, dst_port INTEGER, response BOOLEAN, method VARCHAR, url VARCHAR, status INTEGER, time_ms BIGINT)',
    );
    for (const r of lines)
      await c.run('INSERT INTO h VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
        r.src,
        r.srcPort,
        r.dst,
        r.dstPort,
        r.response,
        r.method,
        r.url,
        r.status,
        r.timeMs,
      ]);
    for (const response of [false, true]) {
      const n = await c.runAndReadAll(
        `SELECT count(DISTINCT (${httpLineSql(response)}))::INTEGER AS n FROM h WHERE response = ${response}`,
      );
      const keys = new Set(lines.filter((r) => r.response === response).map(httpLineKey));
      assert.equal(n.getRowObjectsJS()[0]?.n, keys.size, response ? 'responses' : 'requests');
    }
  } finally {
    c.closeSync();
    db.closeSync();
  }
});

/** A subscriber's first push once `arm` is called (a heartbeat if nothing it counts came). */
function nextPush(feed: LiveFeed, filter: LiveFilter) {
  let armed = false;
  let stop = () => {};
  const got = new Promise<LiveUpdate>((resolve) => {
    stop = feed.subscribe(filter, (u) => {
      if (armed) resolve(u);
    });
  });
  return {
    got,
    stop: () => stop(),
    arm: () => {
      armed = true;
    },
  };
}

test('the live feed counts what the windowed query counts, on-link traffic left out of both', async () => {
  const store = await DuckStore.open(':memory:', { retentionDays: 7, rollupRetentionDays: 90 });
  const feed = new LiveFeed();
  try {
    for (const b of BATCHES) await store.append(b);
    const pushes = FILTERS.map((f) => nextPush(feed, f));
    for (const b of BATCHES) feed.add(b);
    for (const p of pushes) p.arm();
    for (const [i, filter] of FILTERS.entries()) {
      const push = pushes[i];
      assert.ok(push);
      const u = await push.got;
      push.stop();
      const w = await summary(store.reader, { fromMs: now - 60_000, toMs: now, ...filter });
      const conversations = (Object.keys(u.flows.byLocality) as Locality[]).reduce(
        (n, l) => n + u.flows.byLocality[l].conversations,
        0,
      );
      const name = JSON.stringify(filter);
      assert.deepEqual(
        {
          flowRecords: u.flows.records,
          bytes: u.flows.bytes,
          conversations,
          httpRequests: u.http.requests,
          httpErrors: u.http.errors,
        },
        w,
        `live against windowed, filter ${name}`,
      );
    }
    const all = await summary(store.reader, { fromMs: now - 60_000, toMs: now });
    assert.deepEqual(all, { conversations: 3, bytes: 1020, flowRecords: 9, httpRequests: 1, httpErrors: 1 });
  } finally {
    feed.close();
    store.close();
  }
});
