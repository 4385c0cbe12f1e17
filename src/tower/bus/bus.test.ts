/**
 * Durable ingest through the bus (docs/bus.md), on real nats-server processes and a real
 * tower process fed by real node export links with their spools: batches acknowledged only
 * once JetStream holds them, the writer killed with SIGKILL, the bus server killed, one
 * server of an R3 cluster killed — every record stored once, none lost. And a tower without
 * `bus:` as before.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect } from 'nats';
import { allAcked, busYaml, feed, nodeLink, storedSeqs, writerDone } from '../../../test/support/bus-rig.js';
import { freePort } from '../../../test/support/free-port.js';
import { type NatsSet, startNats, startNatsCluster } from '../../../test/support/nats.js';
import { scrape } from '../../../test/support/scrape.js';
import { TowerRig, waitFor } from '../../../test/support/tower-process.js';
import type { TowerLink } from '../../node/export/tower-client.js';
import { issue } from '../../pki/ca.js';
import { towerConfigSchema } from '../config.js';
import { nodeSubject, streamName } from './codec.js';

/** Every record the node sent (seqs 1…records), stored exactly once. */
async function assertAllOnce(rig: TowerRig, node: string, records: number): Promise<void> {
  const s = await storedSeqs(rig, node);
  assert.equal(s.rows, records, `${node}: every record stored (${s.rows} rows of ${records})`);
  assert.equal(s.distinct, s.rows, `${node}: no record stored twice`);
  assert.equal(s.hi - s.lo + 1, records, `${node}: no seq missing`);
}

interface Run {
  rig: TowerRig;
  /** The nodes' export links, one per node name, in order. */
  links: TowerLink[];
  /** The tower.yaml it runs with (a fixed control port: the nodes reconnect to it after a restart). */
  yaml: Record<string, unknown>;
}

/**
 * A tower (on `nats`, with `bus` fields; without: no bus) and a real export link per node;
 * `body` returns how many records each node sent, and after it every one must be in the
 * store once. Everything is stopped after, whatever happens.
 */
async function run(
  nats: NatsSet | undefined,
  nodes: string[],
  o: { bus?: Record<string, unknown>; tower?: Record<string, unknown> },
  body: (r: Run) => Promise<number>,
): Promise<void> {
  const rig = new TowerRig();
  const links: TowerLink[] = [];
  const yaml = {
    control: { listen: `127.0.0.1:${await freePort()}` },
    ...(nats ? busYaml(nats, o.bus) : {}),
    ...o.tower,
  };
  try {
    await rig.start(nodes, yaml);
    for (const n of nodes) links.push(await nodeLink(rig, n));
    const records = await body({ rig, links, yaml });
    for (const l of links.splice(0)) await l.stop();
    await rig.halt();
    for (const n of nodes) await assertAllOnce(rig, n, records);
  } finally {
    for (const l of links) await l.stop();
    await rig.stop();
    await nats?.stop();
  }
}

describe('tower.yaml bus', () => {
  test('a bad bus section is refused, naming the field and what it must be', () => {
    const base = { pki: { dir: '/x' }, tokens: '/x/tokens.yaml' };
    const cases: [unknown, RegExp][] = [
      [{ url: 'http://127.0.0.1:4222', domain: 'b1' }, /bus\.url.*nats:\/\/host:port/],
      [{ url: 'nats://127.0.0.1:4222', domain: 'Brigade.1' }, /bus\.domain.*lower-case/],
      [{ url: 'nats://127.0.0.1:4222' }, /bus\.domain/],
      [{ url: 'nats://127.0.0.1:4222', domain: 'b1', replicas: 0 }, /bus\.replicas/],
      [{ url: 'nats://127.0.0.1:4222', domain: 'b1', stream: 'x' }, /stream/],
    ];
    for (const [bus, problem] of cases) {
      const r = towerConfigSchema.safeParse({ ...base, bus });
      assert.ok(!r.success, `refused: ${JSON.stringify(bus)}`);
      const text = r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      assert.match(text, problem);
    }
    const ok = towerConfigSchema.parse({ ...base, bus: { url: 'nats://a:1, nats://b:2', domain: 'b1' } });
    assert.deepEqual(ok.bus?.url, ['nats://a:1', 'nats://b:2'], 'a comma-separated list of servers');
  });

  test('TLS: with bus.tls the tower connects with its certificate; without it a TLS-only bus refuses it', async () => {
    const rig = new TowerRig();
    let nats: NatsSet | undefined;
    let link: TowerLink | undefined;
    try {
      await rig.prepare(['alpha']);
      const files = await issue(rig.pki, 'tower', 'bus');
      nats = await startNats({ tls: { ca: files.caCert, cert: files.cert('bus'), key: files.key('bus') } });
      const yaml = { control: { listen: `127.0.0.1:${await freePort()}` }, ...busYaml(nats) };
      await assert.rejects(rig.launch(yaml), /bus: cannot connect to nats:\/\/127\.0\.0\.1/);
      await rig.launch(busYaml(nats, { tls: {} }));
      link = await nodeLink(rig, 'alpha');
      const records = await feed(link, 5, 100);
      await allAcked([link], records);
      await writerDone(rig);
      assert.equal((await rig.api('health')).body.bus.messages, 5, 'every batch on the stream, over TLS');
    } finally {
      await link?.stop();
      await rig.stop();
      await nats?.stop();
    }
  });

  test('a tower whose bus cannot be reached does not start, and says which', async () => {
    const rig = new TowerRig();
    try {
      const port = await freePort();
      await assert.rejects(
        rig.start([], { bus: { url: `nats://127.0.0.1:${port}`, domain: 'b1' } }),
        new RegExp(`bus: cannot connect to nats://127.0.0.1:${port}`),
      );
    } finally {
      await rig.stop();
    }
  });
});

describe('durable ingest through the bus', () => {
  test('without bus: the tower stores batches itself, with no NATS', async () => {
    await run(undefined, ['alpha'], {}, async ({ rig, links }) => {
      const records = await feed(links[0] as TowerLink, 10, 200);
      await allAcked(links, records);
      const h = (await rig.api('health')).body;
      assert.equal(h.bus, null, 'no bus in /health');
      assert.equal(h.control.recordsStored, records, 'stored by the control plane');
      return records;
    });
  });

  test('acked only once on the stream, under its id; the writer killed with SIGKILL mid-stream loses and doubles nothing', async () => {
    const nats = await startNats();
    await run(nats, ['alpha', 'bravo.b1'], {}, async ({ rig, links, yaml }) => {
      const sending = Promise.all(links.map((l) => feed(l, 20, 500)));
      // Kill the tower (control plane and writer) once the writer is busy with the stream.
      const nc = await connect({ servers: nats.url });
      try {
        const jsm = await nc.jetstreamManager();
        await waitFor('the writer storing', async () => {
          const c = await jsm.consumers.info(streamName('b1'), 'writer').catch(() => undefined);
          return c && c.delivered.stream_seq > 5 ? true : undefined;
        });
        await rig.kill9();
        await rig.restart(yaml);
        await sending;
        await allAcked(links, 20 * 501);
        await writerDone(rig);
        // The stream holds each batch under its node's subject and id.
        const last = await jsm.streams.getMessage(streamName('b1'), {
          last_by_subj: nodeSubject('b1', 'bravo.b1'),
        });
        assert.match(last.header.get('Nats-Msg-Id'), /^b1\/bravo\.b1:\d+-\d+$/);
      } finally {
        await nc.close();
      }
      return 20 * 501;
    });
  });

  test('the bus server killed: reported, the nodes keep their records, and all arrive once when it is back', async () => {
    const nats = await startNats();
    const metricsPort = await freePort();
    const tower = { metrics: { listen: `127.0.0.1:${metricsPort}` } };
    await run(nats, ['alpha'], { tower }, async ({ rig, links }) => {
      const link = links[0] as TowerLink;
      const before = await feed(link, 10, 200);
      await allAcked(links, before);
      const server = nats.servers[0];
      assert.ok(server);
      await server.kill9();
      const records = before + (await feed(link, 10, 200));
      const health = await waitFor('the outage reported', async () => {
        const b = (await rig.api('health')).body.bus;
        return b.connected === false && b.failures > 0 ? b : undefined;
      });
      assert.equal(health.connected, false);
      const metrics = await scrape('127.0.0.1', metricsPort);
      assert.equal(metrics.get('tacmesh_tower_bus_connected'), 0, 'the outage in Prometheus');
      assert.ok((metrics.get('tacmesh_tower_bus_publish_failures_total') ?? 0) > 0);
      assert.ok(link.unacknowledged > 0, 'the node keeps what the bus did not take');
      assert.match(rig.logText, /bus: server lost/);
      await server.start();
      await allAcked(links, records);
      await writerDone(rig);
      assert.equal((await scrape('127.0.0.1', metricsPort)).get('tacmesh_tower_bus_connected'), 1);
      return records;
    });
  });

  test('an R3 stream on three servers: one killed with SIGKILL under load, every record arrives once', async () => {
    const nats = await startNatsCluster();
    await run(
      nats,
      ['alpha', 'bravo'],
      { bus: { replicas: 3, publishTimeoutMs: 5000 } },
      async ({ rig, links }) => {
        const sending = Promise.all(links.map((l) => feed(l, 20, 500)));
        await waitFor('records on the stream', async () =>
          (await rig.api('health')).body.bus.messages > 10 ? true : undefined,
        );
        // The server the tower talks to, so the kill moves the tower, the stream and the consumer.
        const url = (await rig.api('health')).body.bus.server as string;
        const victim = nats.servers.find((s) => url.endsWith(`:${s.port}`));
        assert.ok(victim, `the tower's server ${url} is one of ours`);
        await victim.kill9();
        await sending;
        await allAcked(links, 20 * 501, 60_000);
        await writerDone(rig, 60_000);
        return 20 * 501;
      },
    );
  });
});
