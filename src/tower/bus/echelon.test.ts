/**
 * Echelons (docs/bus.md): a division tower over two brigade towers, each brigade's real
 * nats-server a leaf node of the division's with a JetStream domain of its own, over TLS of
 * the tacmesh CA. The division's stream sources both brigades' streams; its store holds their
 * nodes under qualified names. One brigade's leaf link, carried by a TCP relay on loopback,
 * is cut for 60 s under traffic: the brigade stores and acks its node alone, the division
 * goes on with its own node and the other brigade; when the link returns, the division
 * catches up with every record once (the catch-up is printed).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import { allAcked, feed, nodeLink, storedSeqs, writerDone } from '../../../test/support/bus-rig.js';
import { freePort } from '../../../test/support/free-port.js';
import {
  leafHubConfig,
  leafRemoteConfig,
  type NatsSet,
  type NatsTlsFiles,
  startNats,
} from '../../../test/support/nats.js';
import { TowerRig, waitFor } from '../../../test/support/tower-process.js';
import type { TowerLink } from '../../node/export/tower-client.js';
import { issue } from '../../pki/ca.js';
import { type Relay, startRelay } from '../../shared/relay.js';
import { towerConfigSchema } from '../config.js';
import { streamName } from './codec.js';

const CUT_MS = 60_000;
const DIVISION = 'division';

describe('tower.yaml bus.echelon', () => {
  test('a bad echelon is refused, naming the field and what is wrong', () => {
    const base = { pki: { dir: '/x' }, tokens: '/x/tokens.yaml' };
    const bus = (echelon: unknown) => ({ url: 'nats://127.0.0.1:4222', domain: DIVISION, echelon });
    const cases: [unknown, RegExp][] = [
      [{ brigades: [] }, /bus\.echelon\.brigades: must name at least one brigade/],
      [{ brigades: ['Brigade.1'] }, /bus\.echelon\.brigades\.0: must be a name of lower-case/],
      [{ brigades: ['brigade1', 'brigade1'] }, /bus\.echelon\.brigades\.1: brigade1 is listed twice/],
      [
        { brigades: ['brigade1', DIVISION] },
        /bus\.echelon\.brigades\.1: division is this tower's own domain/,
      ],
      [{ brigade: ['brigade1'] }, /bus\.echelon.*brigade/],
    ];
    for (const [echelon, problem] of cases) {
      const r = towerConfigSchema.safeParse({ ...base, bus: bus(echelon) });
      assert.ok(!r.success, `refused: ${JSON.stringify(echelon)}`);
      const text = r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      assert.match(text, problem);
    }
    const ok = towerConfigSchema.parse({ ...base, bus: bus({ brigades: ['brigade1', 'brigade2'] }) });
    assert.deepEqual(ok.bus?.echelon, { brigades: ['brigade1', 'brigade2'] });
  });
});

/** Messages of the division's stream that came from `brigade`. */
async function fromBrigade(jsm: JetStreamManager, brigade: string): Promise<number> {
  const s = await jsm.streams.info(streamName(DIVISION), { subjects_filter: `flows.${brigade}.>` });
  return Object.values(s.state.subjects ?? {}).reduce((n, c) => n + c, 0);
}

test('a brigade cut off for 60 s works alone, and the division catches up with every record once', async () => {
  const div = new TowerRig();
  const b1 = new TowerRig();
  const b2 = new TowerRig();
  const links: TowerLink[] = [];
  const servers: NatsSet[] = [];
  let relay: Relay | undefined;
  let hubClient: NatsConnection | undefined;
  try {
    // One CA: each tower's certificate, the nodes', and one per NATS server.
    await div.prepare(['alpha', 'delta']);
    await b1.prepare([], div);
    await b2.prepare([], div);
    const files = await issue(div.pki, 'tower', 'bus-division');
    for (const b of ['bus-brigade1', 'bus-brigade2']) await issue(div.pki, 'tower', b);
    const tls = (name: string): NatsTlsFiles => ({
      ca: files.caCert,
      cert: files.cert(name),
      key: files.key(name),
    });

    // brigade1's leaf link goes through a relay the test cuts; brigade2's is direct.
    const leafPort = await freePort();
    relay = await startRelay(`127.0.0.1:${leafPort}`);
    const relayAt = relay.address;
    const hub = await startNats({
      name: DIVISION,
      domain: DIVISION,
      extra: leafHubConfig(leafPort, tls('bus-division'), ['bus-brigade1', 'bus-brigade2'], relayAt),
    });
    servers.push(hub);
    const n1 = await startNats({
      name: 'brigade1',
      domain: 'brigade1',
      extra: leafRemoteConfig(relayAt, tls('bus-brigade1')),
    });
    servers.push(n1);
    const n2 = await startNats({
      name: 'brigade2',
      domain: 'brigade2',
      extra: leafRemoteConfig(`127.0.0.1:${leafPort}`, tls('bus-brigade2')),
    });
    servers.push(n2);
    // A server with a certificate of the CA but no leaf user of the division is refused.
    const stranger = await startNats({
      name: 'stranger',
      extra: leafRemoteConfig(`127.0.0.1:${leafPort}`, tls('bus-division')),
    });
    servers.push(stranger);
    await waitFor('the stranger refused', async () =>
      stranger.servers[0]?.logText.includes('Authorization Violation') ? true : undefined,
    );
    await stranger.stop();
    await waitFor('both leaf nodes connected', async () =>
      [n1, n2].every((n) => n.servers[0]?.logText.includes('JetStream Not Extended')) ? true : undefined,
    );

    const busOf = (set: NatsSet, domain: string, more = {}) => ({
      bus: { url: set.url, domain, publishTimeoutMs: 1000, ...more },
    });
    await b1.launch(busOf(n1, 'brigade1'));
    await b2.launch(busOf(n2, 'brigade2'));
    await div.launch(busOf(hub, DIVISION, { echelon: { brigades: ['brigade1', 'brigade2'] } }));
    // Each brigade has a node named alpha with the same seqs; the division has delta.
    const [a1, a2, d] = [
      await nodeLink(b1, 'alpha'),
      await nodeLink(b2, 'alpha'),
      await nodeLink(div, 'delta'),
    ];
    links.push(a1, a2, d);
    hubClient = await connect({ servers: hub.url });
    const jsm = await hubClient.jetstreamManager();

    const sent = { a1: 0, a2: 0, d: 0 };
    sent.a1 += await feed(a1, 5, 200);
    sent.a2 += await feed(a2, 5, 200);
    sent.d += await feed(d, 5, 200);
    await waitFor('brigade1 in the division', async () =>
      (await fromBrigade(jsm, 'brigade1')) === 5 ? true : undefined,
    );

    // The cut: the relay's connections ended, its port closed for 60 s.
    await relay.close();
    relay = undefined;
    const cutAt = Date.now();
    const during = await Promise.all([
      feed(a1, 60, 500, CUT_MS / 60),
      feed(a2, 20, 200, CUT_MS / 20),
      feed(d, 20, 200, CUT_MS / 20),
    ]);
    const backlog = during[0];
    sent.a1 += during[0];
    sent.a2 += during[1];
    sent.d += during[2];
    await allAcked([a1], sent.a1);
    await allAcked([a2], sent.a2);
    await allAcked([d], sent.d);
    const alone = await writerDone(b1);
    assert.equal(alone.messages, 65, 'brigade1 took and stored every batch while cut off');
    assert.equal(await fromBrigade(jsm, 'brigade1'), 5, 'nothing crossed the cut link');
    await waitFor('brigade2 current in the division', async () =>
      (await fromBrigade(jsm, 'brigade2')) === 25 ? true : undefined,
    );
    const seen = (await div.api('health')).body.bus.brigades;
    console.log(`cut ${Date.now() - cutAt} ms; the division's view of its brigades: ${JSON.stringify(seen)}`);

    // The link back: the relay listens on the same port again; the leaf reconnects.
    const backAt = Date.now();
    relay = await startRelay(`127.0.0.1:${leafPort}`, { listen: relayAt });
    let firstAt = 0;
    await waitFor(
      'the division caught up with brigade1',
      async () => {
        const n = await fromBrigade(jsm, 'brigade1');
        if (n > 5 && !firstAt) firstAt = Date.now();
        return n === 65 ? true : undefined;
      },
      60_000,
    );
    const doneAt = Date.now();
    const secs = (doneAt - firstAt) / 1000;
    console.log(
      `catch-up: ${backlog} records (60 batches) of brigade1 in ${doneAt - firstAt} ms after the first arrived ` +
        `(${Math.round(backlog / Math.max(secs, 0.001))} records/s; the leaf reconnected ${firstAt - backAt} ms after the link returned)`,
    );

    await writerDone(div, 60_000);
    const nodes = (await div.api('nodes')).body.map((n: { name: string }) => n.name).sort();
    assert.deepEqual(
      nodes,
      ['brigade1/alpha', 'brigade2/alpha', 'delta'],
      "the division lists every brigade's nodes",
    );
    const own = (await b1.api('nodes')).body.map((n: { name: string }) => n.name);
    assert.deepEqual(own, ['alpha'], 'a brigade lists its own nodes unqualified');
    for (const l of links.splice(0)) await l.stop();
    for (const rig of [div, b1, b2]) await rig.halt();
    const once = (records: number) => ({ rows: records, distinct: records, lo: 1, hi: records });
    assert.deepEqual(
      await storedSeqs(div, 'brigade1/alpha'),
      once(sent.a1),
      'brigade1/alpha: every record once',
    );
    assert.deepEqual(
      await storedSeqs(div, 'brigade2/alpha'),
      once(sent.a2),
      'brigade2/alpha: every record once',
    );
    assert.deepEqual(await storedSeqs(div, 'delta'), once(sent.d), "the division's own node, unqualified");
    assert.deepEqual(await storedSeqs(b1, 'alpha'), once(sent.a1), 'brigade1 stored its node itself');
  } finally {
    for (const l of links) await l.stop();
    await hubClient?.close();
    await relay?.close();
    for (const rig of [div, b1, b2]) await rig.stop();
    for (const s of servers) await s.stop();
  }
});
