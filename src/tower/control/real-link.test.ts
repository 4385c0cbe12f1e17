/**
 * The limits do not touch a well-behaved node: the node's own export link (TowerLink, as
 * `tacmesh node run` uses it) with a few subnets and slices, batches, status every interval
 * and agent events, against a real tower process — everything stored, nothing refused,
 * throttled, clamped or given up.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { benchRecords, benchStats } from '../../../bench/tower/records.js';
import { TowerRig, waitFor } from '../../../test/support/tower-process.js';
import { SeqAllocator } from '../../node/export/seq.js';
import { TowerLink } from '../../node/export/tower-client.js';
import { pkiPaths } from '../../pki/ca.js';

test('a well-behaved node is not refused, throttled, clamped or cut short by the limits', async () => {
  const rig = new TowerRig();
  let link: TowerLink | undefined;
  try {
    await rig.start(['alpha'], { nodes: [{ name: 'alpha', subnets: ['10.77.95.0/24', '10.77.96.0/24'] }] });
    const paths = pkiPaths(rig.pki);
    link = new TowerLink(
      {
        node: 'alpha',
        tower: `127.0.0.1:${rig.controlPort}`,
        tls: { caCert: paths.caCert, cert: paths.cert('alpha'), key: paths.key('alpha') },
        hello: () => ({
          subnets: ['10.77.95.0/24', '10.77.96.0/24'],
          slices: [{ name: 'c2', subnets: ['10.77.95.0/25'], bridge: 'br-c2' }],
          position: { lat: 37.5, lon: 127 },
        }),
        onMonitorConfig: () => undefined,
        spool: { dir: `${rig.dir}/spool`, maxBytes: 64 * 1024 ** 2 },
      },
      new SeqAllocator(rig.dir),
    );
    await link.start();
    const up = link;
    await waitFor('the link up', async () => (up.connected ? true : undefined));
    for (let b = 0; b < 20; b++) {
      up.flows(benchRecords(1000, b * 1000, Date.now()));
      up.stats(benchStats());
      up.sendNow({ status: { timeMs: Date.now(), health: 'ok', interfaces: [] } });
      up.sendSoon({
        event: {
          timeMs: Date.now(),
          entity: 'slice c2',
          problem: 'none',
          action: 'checked',
          ok: true,
          cause: '',
          error: '',
          tookMs: 1,
        },
      });
      await new Promise((r) => setTimeout(r, 50));
    }
    await waitFor('every record acknowledged', async () => (up.unacknowledged === 0 ? true : undefined));
    const h = await rig.health();
    assert.equal(h.recordsStored, 20 * 1001, 'every flow and stats record stored');
    for (const k of [
      'helloRefused',
      'streamsRefused',
      'revokedRefused',
      'identityRefused',
      'messagesThrottled',
      'timesClamped',
      'seqGapsClosed',
      'badMessages',
    ])
      assert.equal(h[k], 0, k);
    assert.equal(up.counters.refusals, 0);
    const node = (
      (await rig.api('nodes')).body as { name: string; subnets: string[]; events: unknown[] }[]
    ).find((n) => n.name === 'alpha');
    assert.deepEqual(node?.subnets, ['10.77.95.0/24', '10.77.96.0/24']);
    assert.equal(node?.events.length, 20, 'every agent event recorded');
  } finally {
    await link?.stop();
    await rig.stop();
  }
});
