/**
 * A standby tower (docs/bus.md): two tower processes on one real nats-server share a leader
 * lease; the standby refuses node streams naming the leader and keeps its own store current
 * from the stream; the leader killed with SIGKILL, the standby leads once the lease lapses
 * (the time is printed), and the node's spool brings it every record, stored once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { allAcked, busYaml, feed, nodeLink, storedSeqs, writerDone } from '../../../test/support/bus-rig.js';
import { freePort } from '../../../test/support/free-port.js';
import { startNats } from '../../../test/support/nats.js';
import { TowerRig, waitFor } from '../../../test/support/tower-process.js';
import type { TowerLink } from '../../node/export/tower-client.js';

const TTL_MS = 1500;

test('the standby refuses nodes and keeps up; the leader killed, it leads and every record arrives once', async () => {
  const nats = await startNats();
  const a = new TowerRig();
  const b = new TowerRig();
  const links: TowerLink[] = [];
  const nodeDir = mkdtempSync('/tmp/tacmesh-standby-node-');
  try {
    const lease = (holder: string) => ({ consumer: `writer-${holder}`, lease: { holder, ttlMs: TTL_MS } });
    await a.start(['alpha'], busYaml(nats, lease('a')));
    await waitFor('a leading', async () => ((await a.api('health')).body.bus.lease.leads ? true : undefined));
    await b.prepare([], a);
    await b.launch({ control: { listen: `127.0.0.1:${await freePort()}` }, ...busYaml(nats, lease('b')) });
    const bLease = (await b.api('health')).body.bus.lease;
    assert.deepEqual(bLease, { holder: 'b', leader: 'a', leads: false });
    const refused = await b.node('alpha').connect().result;
    assert.deepEqual(refused, { welcome: false, reason: 'this tower is a standby: the leader is a' });

    const toA = await nodeLink(a, 'alpha', nodeDir);
    links.push(toA);
    const first = await feed(toA, 10, 200);
    await allAcked([toA], first);
    const standby = await writerDone(b);
    assert.equal(standby.writer.stored, 10, "the standby's writer stored every batch from the stream");

    // The leader dies; the node goes on recording into its spool.
    await a.kill9();
    const killedAt = Date.now();
    await waitFor('b leading', async () => ((await b.api('health')).body.bus.lease.leads ? true : undefined));
    console.log(
      `failover: the standby leads ${Date.now() - killedAt} ms after the leader's SIGKILL (lease ${TTL_MS} ms)`,
    );
    const records = first + (await feed(toA, 10, 200));
    await toA.stop();
    links.length = 0;
    // The node re-pointed at the new leader, with the same spool and seqs.
    const toB = await nodeLink(b, 'alpha', nodeDir);
    links.push(toB);
    await allAcked([toB], records);
    await writerDone(b);
    await toB.stop();
    links.length = 0;
    await b.halt();
    const s = await storedSeqs(b, 'alpha');
    assert.deepEqual(
      s,
      { rows: records, distinct: records, lo: 1, hi: records },
      'every record once in the new leader',
    );
  } finally {
    for (const l of links) await l.stop();
    await a.stop();
    await b.stop();
    await nats.stop();
    rmSync(nodeDir, { recursive: true, force: true });
  }
});
