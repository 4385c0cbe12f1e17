import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { FlowRow, HttpRow, IngestBatch } from '../model.js';
import { LiveFeed, type LiveUpdate } from './live.js';

const feed = new LiveFeed();
after(() => feed.close());

/** What flow and HTTP rows share: one connection from a container to port 80. */
const conn = () => ({
  node: 'n1',
  seq: 1,
  timeMs: Date.now(),
  iface: 'pa',
  ifaceKind: 'container' as const,
  ipVersion: 4,
  src: '10.77.151.1',
  srcPort: 40000,
  dstPort: 80,
});

function flow(over: Partial<FlowRow>): FlowRow {
  return {
    ...conn(),
    direction: 'egress',
    dst: '10.77.151.2',
    protocol: 6,
    packets: 2,
    bytes: 100,
    tcpFlags: 0,
    dscp: 0,
    firstSeenMs: Date.now(),
    locality: 'intra',
    srcNode: 'n1',
    dstNode: 'n1',
    ...over,
  };
}

function http(over: Partial<HttpRow>): HttpRow {
  return {
    ...conn(),
    direction: 'ingress',
    dst: '10.77.153.1',
    response: false,
    method: 'GET',
    url: '/a',
    host: '10.77.153.1',
    status: 0,
    version: '1.1',
    truncated: false,
    locality: 'external',
    ...over,
  };
}

const batch = (flows: FlowRow[], rows: HttpRow[]): IngestBatch => ({
  node: 'n1',
  firstSeq: 1,
  lastSeq: 1,
  flows,
  http: rows,
  stats: [],
  links: [],
  routes: [],
});

function next(filter: Parameters<LiveFeed['subscribe']>[0] = {}): {
  got: Promise<LiveUpdate>;
  stop: () => void;
} {
  let stop = () => {};
  const got = new Promise<LiveUpdate>((resolve) => {
    stop = feed.subscribe(filter, (u) => {
      if (u.flows.records || u.http.requests || u.http.responses) resolve(u);
    });
  });
  return { got, stop };
}

test('a batch becomes one aggregate: egress bytes, conversations by locality, each HTTP line once', async () => {
  const { got, stop } = next();
  feed.add(
    batch(
      [
        flow({ direction: 'ingress', iface: 'pa', bytes: 100 }),
        flow({ direction: 'egress', iface: 'pb', bytes: 100 }),
        flow({ src: '10.77.151.2', dst: '10.77.151.1', srcPort: 80, dstPort: 40000, bytes: 60 }),
        flow({ dst: '10.77.153.1', locality: 'external', dstNode: null, bytes: 40, node: 'n1' }),
      ],
      [
        // One request crossing the switch: seen on the port it enters and the one it leaves.
        http({ iface: 'pa' }),
        http({ iface: 'tx', direction: 'egress' }),
        http({
          iface: 'tx',
          response: true,
          src: '10.77.153.1',
          dst: '10.77.151.1',
          srcPort: 80,
          dstPort: 40000,
          status: 503,
        }),
        http({
          iface: 'pa',
          response: true,
          src: '10.77.153.1',
          dst: '10.77.151.1',
          srcPort: 80,
          dstPort: 40000,
          status: 503,
        }),
      ],
    ),
  );
  const u = await got;
  stop();
  assert.equal(u.flows.records, 4);
  assert.equal(
    u.flows.bytes,
    200,
    'egress only: the ingress sighting of the first flow is not counted again',
  );
  assert.equal(u.flows.byLocality.intra.conversations, 2, 'two 5-tuples, one per direction');
  assert.equal(u.flows.byLocality.external.conversations, 1);
  assert.deepEqual(u.nodes.n1, { bytes: 200, records: 4 });
  assert.equal(u.http.requests, 1, 'a request seen on two ports is one request');
  assert.equal(u.http.responses, 1);
  assert.equal(u.http.errors, 1);
  assert.deepEqual(u.http.byStatus, { 503: 1 });
  assert.equal(u.recent.length, 1);
  assert.equal(u.recent[0]?.status, 503, 'the response in the same batch gives the request its status');
});

test('filters: address, locality, and the URL (which leaves flows and responses alone)', async () => {
  const a = next({ ip: '10.77.153.1' });
  const b = next({ locality: 'intra', url: '/KEEP' });
  feed.add(
    batch(
      [flow({}), flow({ dst: '10.77.153.1', locality: 'external', bytes: 7 })],
      [http({ url: '/drop' }), http({ url: '/keep/me', srcPort: 40001 })],
    ),
  );
  const [ua, ub] = [await a.got, await b.got];
  a.stop();
  b.stop();
  assert.equal(ua.flows.records, 1);
  assert.equal(ua.flows.bytes, 7);
  assert.equal(ua.http.requests, 2, 'both requests go to 10.77.153.1');
  assert.equal(ub.flows.records, 1, 'only the intra flow');
  assert.equal(ub.http.requests, 0, 'the requests are external');
  const c = next({ url: '/KEEP' });
  feed.add(batch([], [http({ url: '/drop' }), http({ url: '/keep/me', srcPort: 40001 })]));
  const uc = await c.got;
  c.stop();
  assert.deepEqual(
    uc.recent.map((r) => r.url),
    ['/keep/me'],
  );
});

test('bounded: at most 100 request lines per push, the newest, and the rest counted', async () => {
  const { got, stop } = next();
  feed.add(
    batch(
      [],
      Array.from({ length: 250 }, (_, i) => http({ url: `/r${i}`, srcPort: 30000 + i })),
    ),
  );
  const u = await got;
  stop();
  assert.equal(u.http.requests, 250);
  assert.equal(u.recent.length, 100);
  assert.equal(u.recent.at(-1)?.url, '/r249');
  assert.equal(u.recentDropped, 150);
});

test('a heartbeat at least once a second with nothing to say, and close() ends every stream', async () => {
  const beats: LiveUpdate[] = [];
  let ended = false;
  const stop = feed.subscribe(
    {},
    (u) => beats.push(u),
    () => {
      ended = true;
    },
  );
  await new Promise((r) => setTimeout(r, 2300));
  assert.ok(beats.length >= 2, `${beats.length} heartbeats in 2.3 s`);
  assert.equal(beats[0]?.flows.records, 0);
  const other = new LiveFeed();
  let otherEnded = false;
  other.subscribe(
    {},
    () => {},
    () => {
      otherEnded = true;
    },
  );
  other.close();
  assert.equal(otherEnded, true);
  assert.equal(ended, false);
  stop();
});

test('a batch is pushed within the flush delay (100 ms), not on the next heartbeat (1 s)', (t) => {
  // The feed's own clock, mocked: the order of events does not depend on the machine's load.
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
  const own = new LiveFeed();
  const got: LiveUpdate[] = [];
  const stop = own.subscribe({}, (u) => {
    if (u.flows.records) got.push(u);
  });
  try {
    t.mock.timers.tick(10);
    own.add(batch([flow({ timeMs: Date.now(), firstSeenMs: Date.now() })], []));
    t.mock.timers.tick(89);
    assert.equal(got.length, 0, 'not before the flush delay since the last push');
    t.mock.timers.tick(1);
    assert.equal(got.length, 1, 'pushed at the flush delay, long before the heartbeat');
    assert.equal(got[0]?.flows.records, 1);
  } finally {
    stop();
    own.close();
  }
});
