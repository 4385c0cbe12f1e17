/**
 * One node against the tower: a huge hello, sparse seqs, a flood of events and status, many
 * streams, record times in the future. Each is refused, capped or clamped — and counted —
 * while another node's records keep arriving and being stored. A real tower process, real
 * mutual TLS, real gRPC; the stand-in nodes speak the control plane directly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { flow, type Json, type NodeStream, TowerRig, waitFor } from '../../../test/support/tower-process.js';
import { DuckStore } from '../store/duckdb.js';

const A_NET = '10.77.71';
const TOWER = {
  limits: { seqGapsPerNode: 1000, messagesPerSecond: 20, streamsPerNode: 4, subnetsPerNode: 1024 },
};
const B_NET = '10.77.72';

// Bounded, so that a tower that stalls (as one did before these limits) fails rather than hangs.
describe('one node against the tower: the others keep being served', { timeout: 180_000 }, () => {
  const rig = new TowerRig();
  let b: NodeStream;
  let bSeq = 0;

  /** Node B sends `n` batches of 10 flows, each acknowledged before the next. */
  async function bravoSends(n: number): Promise<number> {
    let acked = 0;
    for (let i = 0; i < n; i++) {
      const flows = Array.from({ length: 10 }, () => flow(++bSeq, `${B_NET}.1`, `${B_NET}.2`));
      if (await b.batch(flows)) acked++;
    }
    assert.equal(b.ended, undefined, "node B's stream is still open");
    return acked;
  }

  async function bravoStored(): Promise<number> {
    return (await rig.api(`summary?node=bravo&last=1h`)).body.flowRecords;
  }

  before(async () => {
    await rig.start(['alpha', 'bravo'], TOWER);
    b = rig.node('bravo').connect({ subnets: [`${B_NET}.0/24`] });
    assert.deepEqual(await b.result, { welcome: true, storedSeq: 0 });
  });

  after(async () => {
    b?.close();
    await rig.stop();
  });

  test('a hello with 100 000 subnets is refused with the reason, and node B keeps storing', async () => {
    const subnets = Array.from({ length: 100_000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`);
    const a = rig.node('alpha').connect({ subnets });
    const sent = bravoSends(20);
    const r = await a.result;
    assert.equal(r.welcome, false);
    assert.match(
      (r as { reason: string }).reason,
      /100000 subnets .* more than the 1024 a node may register \(limits\.subnetsPerNode\)/,
    );
    assert.equal(await sent, 20, "all of B's batches acknowledged");
    const nodes = (await rig.api('nodes')).body as Json[];
    assert.equal(
      nodes.find((n) => n.name === 'alpha'),
      undefined,
      'the refused node is not registered',
    );
    assert.equal(await bravoStored(), bSeq);
    assert.ok((await rig.health()).helloRefused >= 1);
  });

  test('a malformed subnet in a hello is refused with the reason', async () => {
    const a = rig.node('alpha').connect({ subnets: ['10.77.71.0/24', '10.77.300.0/24'] });
    const r = await a.result;
    assert.equal(r.welcome, false);
    assert.match((r as { reason: string }).reason, /"10\.77\.300\.0\/24" is not a CIDR prefix/);
  });

  test('sparse seqs: the gaps the tower keeps track of are capped, and node B keeps storing', async () => {
    const a = rig.node('alpha').connect({ subnets: [`${A_NET}.0/24`] });
    assert.equal((await a.result).welcome, true);
    const before = (await rig.health()).seqGapsClosed;
    // Every other seq, newest first: 3 × 20 000 gaps against a cap of 1000.
    let acked = 0;
    const flood = (async () => {
      for (let k = 0; k < 3; k++) {
        const base = 1 + k * 40_000;
        const flows = Array.from({ length: 20_000 }, (_, i) =>
          flow(base + 40_000 - 2 * (i + 1), `${A_NET}.1`, `${A_NET}.2`),
        );
        if (await a.batch(flows, base, base + 40_000)) acked++;
      }
    })();
    const sent = await bravoSends(20);
    await flood;
    assert.equal(acked, 3, "A's batches are stored and acknowledged");
    assert.equal(sent, 20);
    assert.equal(await bravoStored(), bSeq);
    const after = (await rig.health()).seqGapsClosed;
    assert.ok(after - before >= 3 * 20_000 - 1000, `gaps closed: ${after - before}`);
    const stored = (await rig.api('summary?node=alpha&last=1h')).body.flowRecords;
    assert.equal(stored, 60_000, 'every record of A was stored once');
    a.close();
  });

  test('an event and status flood is throttled and counted, and node B keeps storing', async () => {
    const a = rig.node('alpha').connect({ subnets: [`${A_NET}.0/24`] });
    assert.equal((await a.result).welcome, true);
    const before = (await rig.health()).messagesThrottled;
    const event = {
      timeMs: Date.now(),
      entity: 'x',
      problem: 'flood',
      action: 'none',
      ok: true,
      cause: '',
      error: '',
      tookMs: 0,
    };
    for (let i = 0; i < 5000; i++) {
      a.send({ event });
      a.send({ status: { timeMs: Date.now(), health: 'ok', interfaces: [] } });
    }
    const sent = await bravoSends(10);
    assert.equal(sent, 10);
    await waitFor('the flood to be read', async () =>
      (await rig.health()).messagesThrottled - before > 5000 ? true : undefined,
    );
    assert.equal(await bravoStored(), bSeq);
    assert.equal(a.ended, undefined, 'the flooding node is throttled, not cut off');
    a.close();
  });

  test('many streams of one node: past limits.streamsPerNode they are refused, node B keeps storing', async () => {
    const node = rig.node('alpha');
    const streams = Array.from({ length: 12 }, () => node.connect({ subnets: [`${A_NET}.0/24`] }));
    const results = await Promise.all(streams.map((s) => s.result));
    const refused = results.filter((r) => !r.welcome) as { reason: string }[];
    assert.ok(results.filter((r) => r.welcome).length <= 4, 'at most 4 streams served');
    assert.ok(refused.length >= 8);
    for (const r of refused)
      assert.match(r.reason, /streams open, the most it may \(limits\.streamsPerNode\)|too many hellos/);
    assert.equal(await bravoSends(10), 10);
    assert.equal(await bravoStored(), bSeq);
    node.close();
  });

  test("a record stamped ten years ahead is stored at the tower's time, so retention removes it", async () => {
    const node = rig.node('alpha');
    const a = await waitFor('a stream for alpha again', async () => {
      const s = node.connect({ subnets: [`${A_NET}.0/24`] });
      if ((await s.result).welcome) return s;
      s.close();
      await new Promise((r) => setTimeout(r, 1000));
      return undefined;
    });
    const now = Date.now();
    const seq = 200_000;
    assert.ok(await a.batch([flow(seq, `${A_NET}.9`, `${A_NET}.10`, now + 10 * 365 * 86_400_000)]));
    const window = `from=${now - 3_600_000}&to=${now + 3 * 3_600_000}`;
    const talkers = (await rig.api(`talkers?node=alpha&${window}&limit=1000`)).body as Json[];
    assert.ok(
      talkers.some((t) => t.src === `${A_NET}.9`),
      'the record is within the next hours, not ten years away',
    );
    assert.ok((await rig.health()).timesClamped >= 1);
    node.close();
  });

  test('100 000 subnets stored from before the limit are not indexed at a restart, and node B keeps storing', async () => {
    b.close();
    const now = Date.now();
    await rig.restart(TOWER, async () => {
      const store = await DuckStore.open(`${rig.dir}/tower.duckdb`, {
        retentionDays: 7,
        rollupRetentionDays: 90,
      });
      await store.saveNode({
        name: 'zulu',
        subnets: Array.from({ length: 100_000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.0/24`),
        slices: [],
        lat: null,
        lon: null,
        software: '',
        firstSeenMs: now,
        lastSeenMs: now,
        status: null,
        monitor: null,
      });
      store.close();
    });
    const zulu = ((await rig.api('nodes')).body as Json[]).find((n) => n.name === 'zulu');
    assert.deepEqual(
      zulu?.subnets,
      [],
      'the stored subnets were dropped, to be registered at its next hello',
    );
    b = rig.node('bravo').connect({ subnets: [`${B_NET}.0/24`] });
    assert.equal((await b.result).welcome, true);
    assert.equal(await bravoSends(5), 5);
    assert.equal(await bravoStored(), bSeq);
  });
});
