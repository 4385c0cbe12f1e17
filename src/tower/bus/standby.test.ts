/**
 * A leader tower and its standby (docs/bus.md) on one real nats-server, fed by real node
 * export links given both towers' addresses. The standby refuses nodes naming the leader,
 * changes no policy, and holds the leader's policy and audit log from the bus. The leader cut
 * from the bus ends its node streams; the standby leads and the nodes move to it by
 * themselves. Back on the bus the old leader follows; the new one killed with SIGKILL, it
 * leads again and the nodes come back, with the policy and the audit entries the other wrote.
 * The failover times are printed; every record of each node is stored once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { allAcked, busYaml, feed, nodeLink, storedSeqs } from '../../../test/support/bus-rig.js';
import { freePort } from '../../../test/support/free-port.js';
import { startNats } from '../../../test/support/nats.js';
import { type Json, TowerRig, tacmesh, waitFor } from '../../../test/support/tower-process.js';
import type { TowerLink } from '../../node/export/tower-client.js';
import { pkiPaths } from '../../pki/ca.js';
import { type Relay, startRelay } from '../../shared/relay.js';

const TTL_MS = 1500;
const NODES = ['alpha', 'bravo'];

const policy = (dscp: number) => ({
  classes: [{ name: 'c2', priority: 0, guaranteedBps: 1_000_000, dscp }],
  rules: [{ name: 'c2-udp', class: 'c2', protocol: 17, dstPorts: [5320, 5320] }],
  links: [],
});

const leads = (rig: TowerRig) => async () =>
  (await rig.api('health')).body.bus.lease.leads ? true : undefined;

/** `batches` batches of 200 flow records (and a stats record) from each link; the records each. */
async function feedAll(links: TowerLink[], batches: number): Promise<number> {
  const counts = await Promise.all(links.map((l) => feed(l, batches, 200)));
  return counts[0] ?? 0;
}

test('nodes given both towers follow the lease through a cut from the bus and a SIGKILL; every record once, policy and audit kept', async () => {
  const nats = await startNats();
  const a = new TowerRig();
  const b = new TowerRig();
  const links: TowerLink[] = [];
  const nodeDir = mkdtempSync('/tmp/tacmesh-standby-node-');
  let relay: Relay | undefined;
  try {
    const [portA, portB, relayPort] = [await freePort(), await freePort(), await freePort()];
    const [addrA, addrB] = [`127.0.0.1:${portA}`, `127.0.0.1:${portB}`];
    // Tower a reaches the bus through a relay the test can cut.
    const openRelay = () =>
      startRelay((nats.servers[0]?.url ?? '').slice('nats://'.length), { listen: `127.0.0.1:${relayPort}` });
    relay = await openRelay();
    const yaml = (holder: string, address: string, url?: string) => ({
      control: { listen: address },
      ...busYaml(nats, {
        consumer: `writer-${holder}`,
        lease: { holder, ttlMs: TTL_MS, advertise: address },
        ...(url ? { url } : {}),
      }),
    });
    await a.prepare(NODES);
    await a.launch(yaml('a', addrA, `nats://127.0.0.1:${relayPort}`));
    await waitFor('a leading', leads(a));
    await b.prepare([], a);
    await b.launch(yaml('b', addrB));
    assert.deepEqual((await b.api('health')).body.bus.lease, {
      holder: 'b',
      leader: 'a',
      leaderAddress: addrA,
      leads: false,
    });
    const refused = await b.node('alpha').connect().result;
    assert.deepEqual(refused, { welcome: false, reason: 'this tower is a standby: the leader is a' });

    // A policy set at the leader is in force at the standby, which sets none itself.
    const set = await a.api('qos', { method: 'PUT', body: JSON.stringify(policy(46)) });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const atStandby = await b.api('qos', { method: 'PUT', body: JSON.stringify(policy(34)) });
    assert.equal(atStandby.status, 503);
    assert.match(atStandby.body.error, /this tower is a standby: the leader is a: set the policy there/);
    await waitFor('the policy at the standby', async () =>
      (await b.api('qos')).body.version === 1 ? true : undefined,
    );
    assert.deepEqual((await b.api('qos')).body.policy, (await a.api('qos')).body.policy);

    // The nodes know both towers, the standby first: they find the leader themselves.
    for (const n of NODES) links.push(await nodeLink(a, n, nodeDir, [addrB, addrA]));
    let records = await feedAll(links, 10);
    await allAcked(links, records);
    assert.deepEqual(
      links.map((l) => l.tower),
      [addrA, addrA],
    );

    // The leader cut from the bus gives up its lease and ends its node streams; the standby
    // leads, and the nodes move to it with what they had not had acknowledged.
    await relay.close();
    relay = undefined;
    const cutAt = Date.now();
    await waitFor('a giving the lease up', async () =>
      (await a.api('health')).body.bus.lease.leads === false ? true : undefined,
    );
    const gaveUpMs = Date.now() - cutAt;
    const ended = (await a.api('health')).body.control.standbyRefused;
    assert.ok(ended >= NODES.length, `the cut leader ended its node streams (${ended} refused)`);
    await waitFor('b leading', leads(b));
    const ledMs = Date.now() - cutAt;
    await waitFor('the nodes at b', async () =>
      links.every((l) => l.connected && l.tower === addrB) ? true : undefined,
    );
    console.log(
      `failover (leader cut from the bus): it gave the lease up after ${gaveUpMs} ms, the standby led after ${ledMs} ms, the nodes were on it after ${Date.now() - cutAt} ms (lease ${TTL_MS} ms)`,
    );
    records += await feedAll(links, 5);
    await allAcked(links, records);

    // Back on the bus, the old leader follows, and has the new leader's policy.
    relay = await openRelay();
    await waitFor('a following b', async () => {
      const bus = (await a.api('health')).body.bus;
      return bus.connected && bus.lease.leader === 'b' ? true : undefined;
    });
    const set2 = await b.api('qos', { method: 'PUT', body: JSON.stringify(policy(34)) });
    assert.equal(set2.status, 200, JSON.stringify(set2.body));
    await waitFor('the new policy at the old leader', async () =>
      (await a.api('qos')).body.version === 2 ? true : undefined,
    );

    // The leader killed with SIGKILL: the other leads again and every record reaches its store.
    await b.kill9();
    const killedAt = Date.now();
    records += await feedAll(links, 5);
    await waitFor('a leading again', leads(a));
    const killLedMs = Date.now() - killedAt;
    const all = records * NODES.length;
    await waitFor(
      "every node's record stored at the new leader",
      async () => ((await a.api('health')).body.control.recordsStored === all ? true : undefined),
      30_000,
    );
    console.log(
      `failover (leader SIGKILLed): the standby leads after ${killLedMs} ms, every record stored at it after ${Date.now() - killedAt} ms (lease ${TTL_MS} ms)`,
    );
    assert.deepEqual(
      links.map((l) => l.tower),
      [addrA, addrA],
    );
    const now = (await a.api('qos')).body;
    assert.equal(now.version, 2);
    assert.equal(now.policy.classes[0].dscp, 34, 'the policy the killed leader set is in force');
    const audit = (await a.api('qos/audit')).body as Json[];
    assert.deepEqual(
      audit.map((r) => [r.who, r.action, r.version]),
      [
        ['op', 'set', 2],
        ['op', 'set', 1],
      ],
      'the audit log holds the entries of both leaders, once each',
    );

    // What an operator reads of it, once the writer has caught up (health is read every 2 s).
    await waitFor('the writer caught up', async () => {
      const bus = ((await a.api('health')).body as Json).bus as Json;
      return bus.pending === 0 && bus.ackPending === 0 && bus.lagMs === 0 ? true : undefined;
    });
    const tokenFile = `${a.dir}/operator.token`;
    writeFileSync(tokenFile, a.operator, { mode: 0o600 });
    const report = await tacmesh([
      'tower',
      'bus',
      '--api',
      `https://127.0.0.1:${a.apiPort}`,
      '--ca',
      pkiPaths(a.pki).caCert,
      '--token-file',
      tokenFile,
    ]);
    assert.equal(report.code, 0, report.stderr);
    assert.match(report.stdout, /^bus +connected to (nats:\/\/)?127\.0\.0\.1:\d+$/m);
    assert.match(report.stdout, /^writer +lag 0\.0 s; pending 0, unacknowledged 0;/m);
    assert.match(report.stdout, /^lease +this tower \(a\) leads$/m);

    for (const l of links) await l.stop();
    links.length = 0;
    await a.halt();
    for (const n of NODES)
      assert.deepEqual(
        await storedSeqs(a, n),
        { rows: records, distinct: records, lo: 1, hi: records },
        `every record of ${n} once at the tower that leads`,
      );
  } finally {
    for (const l of links) await l.stop();
    await relay?.close();
    await a.stop();
    await b.stop();
    await nats.stop();
    rmSync(nodeDir, { recursive: true, force: true });
  }
});
