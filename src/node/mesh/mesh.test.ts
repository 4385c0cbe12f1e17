/**
 * The mesh stage on a real radio link between two namespaces: STAMP probes over the veth,
 * the testbed's DLEP radio on the node's loopback, loss by linkem. Loss is checked against
 * linkem's own count of what it dropped, capacity against what the radio was told, and the
 * state follows the radio and the probes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Tool } from '../../../test/support/tools/index.js';
import { Lab } from '../../netlab/lab.js';
import { LinkEmulator } from '../../netlab/linkem.js';
import type { RadioFile } from '../../testbed/radio/radio.js';
import { RADIO_TOOL } from '../../testbed/radios.js';
import type { RouteReport } from './routes/watcher.js';
import type { LinkReport } from './stage.js';

const FIXTURE = new URL('../../../test/fixtures/mesh-stage.ts', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a radio link measured: RTT, loss each way against linkem, capacity from DLEP, up / degraded / down', async () => {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-mesh-'));
  let linkem: LinkEmulator | undefined;
  try {
    const m1 = await lab.netns('m1', { ipv6: false });
    const m2 = await lab.netns('m2', { ipv6: false });
    const v = await lab.veth({ netns: m1, addr: '10.77.231.1/30' }, { netns: m2, addr: '10.77.231.2/30' });
    await lab.staticNeighbours(
      { netns: m1, iface: v.a, ip: '10.77.231.1' },
      { netns: m2, iface: v.b, ip: '10.77.231.2' },
    );

    const radioFile = join(dir, 'radio-m1.json');
    const radio: RadioFile = {
      links: [
        {
          address: '127.0.0.1',
          port: 18540,
          neighbour: { mac: '02:77:00:00:02:01', addresses: ['10.77.231.2'] },
          rateMbit: 20,
          maxRateMbit: 20,
          latencyUs: 2000,
          up: true,
        },
      ],
    };
    const setRadio = (change: Partial<RadioFile['links'][number]>) => {
      radio.links[0] = { ...(radio.links[0] as RadioFile['links'][number]), ...change };
      writeFileSync(radioFile, JSON.stringify(radio));
    };
    setRadio({});
    await new Tool(lab.spawnNode(m1, RADIO_TOOL, [radioFile])).line('ready');
    const stage = (ns: string, spec: object) => {
      const t = new Tool(lab.spawnNode(ns, FIXTURE, [JSON.stringify(spec)]));
      return t;
    };
    const mesh = { probe: { ratePps: 50, windowMs: 120_000, timeoutMs: 1000 }, intervalMs: 300 };
    await stage(m2, { mesh, links: [] }).line('ready'); // the neighbour's reflector
    const m1Stage = stage(m1, {
      mesh,
      links: [
        {
          iface: v.a,
          address: '10.77.231.1',
          rateMbit: 20,
          mesh: { neighbour: '10.77.231.2', dlep: { address: '127.0.0.1', port: 18540 } },
        },
      ],
    });
    await m1Stage.line('ready');
    const last = (): LinkReport | undefined => {
      const lines = m1Stage.stdout
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('['));
      return (JSON.parse(lines.at(-1) ?? '[]') as LinkReport[])[0];
    };
    const until = async (what: string, ok: (r: LinkReport) => boolean) => {
      const deadline = Date.now() + 30_000; // a liveness bound
      for (;;) {
        const r = last();
        if (r && ok(r)) return r;
        if (Date.now() > deadline) throw new Error(`never ${what}; last report: ${JSON.stringify(r)}`);
        await sleep(100);
      }
    };

    const up = await until('up with DLEP capacity', (r) => r.state === 'up' && r.capacityFrom === 'dlep');
    assert.equal(up.capacityBps, 20e6);
    assert.equal(up.radioLatencyUs, 2000);
    assert.ok(up.probe.rttMs && up.probe.rttMs.min > 0, 'a round-trip time');

    // No babeld here: the routes come from the kernel's table, a new one reported as it appears.
    const routes = () =>
      m1Stage.stdout
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as RouteReport);
    const connected = routes()[0]?.routes.find((r) => r.prefix === '10.77.231.0/30');
    assert.equal(routes()[0]?.source, 'kernel');
    assert.deepEqual(
      connected && [connected.via, connected.iface],
      ['', v.a],
      'the connected /30 is its own',
    );
    await lab.ip(m1, 'route', 'add', '10.77.232.0/24', 'via', '10.77.231.2');
    const added = Date.now();
    for (;;) {
      const route = routes()
        .at(-1)
        ?.routes.find((r) => r.prefix === '10.77.232.0/24');
      if (route) {
        assert.deepEqual([route.via, route.iface], ['10.77.231.2', v.a]);
        assert.ok(route.sinceMs >= added - 1000, 'since it appeared');
        break;
      }
      if (Date.now() - added > 10_000) throw new Error('the new route was never reported'); // a liveness bound
      await sleep(100);
    }

    setRadio({ rateMbit: 4 });
    const slow = await until('degraded by capacity', (r) => r.state === 'degraded' && r.capacityBps === 4e6);
    assert.equal(slow.capacityBps, 4e6);
    assert.match(slow.why.join(), /capacity 4\.0 of 20\.0 Mbit\/s/);
    setRadio({ up: false });
    const gone = await until('down by the radio', (r) => r.state === 'down');
    assert.deepEqual(gone.why, ['the radio reports the neighbour gone']);
    setRadio({ up: true, rateMbit: 20 });
    await until('up again', (r) => r.state === 'up');
    // 20 % loss towards the neighbour for a while: the forward loss is what linkem dropped.
    const before = await until('some probes', (r) => r.probe.sent >= 50);
    const lostBefore = Math.round(
      ((before.probe.lossForwardPct + before.probe.lossBackwardPct) / 100) * before.probe.sent,
    );
    linkem = LinkEmulator.attach(v.b, { netns: m2, direction: 'ingress', loss: 0.2 });
    await sleep(4000);
    linkem.setLoss(0);
    await sleep(2500); // every probe sent under loss is answered or timed out
    const after = last() as LinkReport;
    const dropped = Number(linkem.counts().droppedPackets);
    const forward = Math.round((after.probe.lossForwardPct / 100) * after.probe.sent);
    const backward = Math.round((after.probe.lossBackwardPct / 100) * after.probe.sent);
    assert.ok(dropped > 20, `linkem dropped ${dropped} probes`);
    assert.ok(
      Math.abs(forward - lostBefore - dropped) <= 2,
      `forward loss ${forward} (before ${lostBefore}) vs ${dropped} dropped`,
    );
    assert.ok(backward <= 2, `nothing was dropped on the way back (${backward})`);

    (linkem as LinkEmulator).setLoss(1);
    const cut = await until('down by the probes', (r) => r.state === 'down');
    assert.deepEqual(cut.why, ['no probe answered']);
  } finally {
    linkem?.close();
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
