import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { testbedConfigSchema } from './config.js';
import { planTestbed } from './plan.js';
import type { RadioFile } from './radio/radio.js';
import { linkKey, radioFile, uplinkMesh, writeRadios } from './radios.js';

test("every link end's radio reports the neighbour across it, with the link's rate, and a cut link as gone", () => {
  const plan = planTestbed(testbedConfigSchema.parse({}));
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-radios-'));
  try {
    const macs = Object.fromEntries(
      plan.links.flatMap((l, i) => [
        [`${l.a}/${l.ifA}`, `02:00:00:00:${i}:0a`],
        [`${l.b}/${l.ifB}`, `02:00:00:00:${i}:0b`],
      ]),
    );
    const [first, second] = plan.links;
    assert.ok(first && second);
    writeRadios(
      dir,
      plan,
      (l) => ({ rateMbit: l === second ? 4 : 20, lossPct: 0.1, cut: linkKey(l) === linkKey(first) }),
      20,
      macs,
      5000,
    );
    for (const n of plan.nodes) {
      const file = JSON.parse(readFileSync(radioFile(dir, n.name), 'utf8')) as RadioFile;
      const mine = plan.links.filter((l) => l.a === n.name || l.b === n.name);
      assert.equal(file.links.length, mine.length, `${n.name}: a radio per link end`);
      mine.forEach((l, i) => {
        const r = file.links[i];
        const mesh = uplinkMesh(plan, n.name, l);
        assert.equal(r?.port, mesh.dlep.port, "the node's config and its radio agree on the port");
        const peerIsB = l.a === n.name;
        assert.equal(r?.neighbour.mac, macs[peerIsB ? `${l.b}/${l.ifB}` : `${l.a}/${l.ifA}`]);
        assert.deepEqual(r?.neighbour.addresses, [mesh.neighbour]);
        assert.equal(mesh.neighbour, (peerIsB ? l.addrB : l.addrA).split('/')[0]);
        assert.equal(r?.up, l !== first);
        assert.equal(r?.rateMbit, l === second ? 4 : 20);
        assert.equal(r?.latencyUs, 5000, "the delay the air adds, as the radio's latency");
      });
      assert.equal(new Set(file.links.map((l) => l.port)).size, file.links.length, 'a port per radio');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
