/**
 * Identity on the control plane: a revoked certificate is refused (real TLS, real gRPC) as
 * soon as `tacmesh pki revoke` has written the deny-list, without restarting the tower — its
 * open connection is closed and a new one refused — while other nodes carry on. A node may
 * not register another node's subnets, nor subnets tower.yaml does not give it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { flow, type Json, TowerRig, tacmesh } from '../../../test/support/tower-process.js';
import { pkiPaths } from '../../pki/ca.js';

const NAMES = ['alpha', 'bravo', 'charlie', 'delta', 'mallory', 'foxtrot'];
const NODES = [...NAMES, { name: 'echo', subnets: ['10.77.75.0/24'] }];

describe('control-plane identity: revocation and subnet ownership', { timeout: 120_000 }, () => {
  const rig = new TowerRig();

  before(async () => {
    await rig.start([...NAMES, 'echo', 'golf'], { nodes: NODES });
  });

  after(() => rig.stop());

  test('a revoked certificate is refused at once, without a restart, and the others carry on', async () => {
    const pid = rig.pid;
    const bravo = rig.node('bravo').connect({ subnets: ['10.77.82.0/24'] });
    assert.equal((await bravo.result).welcome, true);
    const charlie = rig.node('charlie').connect({ subnets: ['10.77.83.0/24'] });
    assert.equal((await charlie.result).welcome, true);
    const before = (await rig.health()).revokedRefused;

    // Revoked by certificate file: its open connection is closed.
    const byFile = await tacmesh(['pki', 'revoke', pkiPaths(rig.pki).cert('charlie'), '--dir', rig.pki]);
    assert.equal(byFile.code, 0, byFile.stderr);
    assert.match(byFile.stdout, /revoked serial [0-9a-f]+ \(charlie\)/);
    await charlie.closed();
    // ... and a new one is refused.
    const again = rig.node('charlie').connect({ subnets: ['10.77.83.0/24'] });
    assert.equal((await again.result).welcome, false);

    // Revoked by the serial openssl prints (upper case): refused before its first hello.
    const serial = spawnSync(
      'openssl',
      ['x509', '-noout', '-serial', '-in', pkiPaths(rig.pki).cert('delta')],
      {
        encoding: 'utf8',
      },
    ).stdout.replace(/^serial=/, '');
    const bySerial = await tacmesh(['pki', 'revoke', serial.trim(), '--dir', rig.pki]);
    assert.equal(bySerial.code, 0, bySerial.stderr);
    const delta = rig.node('delta').connect({ subnets: ['10.77.84.0/24'] });
    assert.equal((await delta.result).welcome, false);

    assert.ok((await rig.health()).revokedRefused >= before + 3, 'each refusal counted');
    const nodes = (await rig.api('nodes')).body as Json[];
    assert.equal(
      nodes.find((n) => n.name === 'delta'),
      undefined,
      'the revoked node was never registered',
    );
    // The tower was not restarted, and the others carry on.
    assert.equal(rig.pid, pid);
    assert.ok(await bravo.batch([flow(1, '10.77.82.1', '10.77.82.2')]));
    assert.equal(bravo.ended, undefined);
    const again2 = await tacmesh(['pki', 'revoke', pkiPaths(rig.pki).cert('charlie'), '--dir', rig.pki]);
    assert.match(again2.stdout, /already revoked/);
    bravo.close();
  });

  test("a node cannot register another node's subnet, nor one tower.yaml does not give it", async () => {
    const alpha = rig.node('alpha').connect({ subnets: ['10.77.81.0/24'] });
    assert.equal((await alpha.result).welcome, true);
    // mallory claims part of alpha's subnet, then a wider one holding others' too
    for (const [cidr, reason] of [
      ['10.77.81.128/25', /subnet 10\.77\.81\.128\/25 overlaps 10\.77\.81\.0\/24, which is node "alpha"'s/],
      ['10.77.0.0/16', /subnet 10\.77\.0\.0\/16 overlaps 10\.77\.\d+\.0\/24, which is node "\w+"'s/],
    ] as const) {
      const mallory = rig.node('mallory').connect({ subnets: ['10.77.89.0/24', cidr] });
      const r = await mallory.result;
      assert.equal(r.welcome, false, `${cidr} refused`);
      assert.match((r as { reason: string }).reason, reason);
    }
    // still alpha's: a flow inside it is placed on alpha
    assert.ok(await alpha.batch([flow(1, '10.77.81.200', '10.77.81.1')]));
    const nodes = (await rig.api('nodes')).body as Json[];
    assert.equal(
      nodes.find((n) => n.name === 'mallory'),
      undefined,
    );
    const talkers = (await rig.api('talkers?node=alpha&last=1h')).body as Json[];
    assert.equal(talkers.find((t) => t.src === '10.77.81.200')?.locality, 'intra', 'both ends on alpha');
    assert.ok((await rig.health()).helloRefused >= 2);
    alpha.close();
  });

  test('a node with subnets in tower.yaml may register only those, and no other node may', async () => {
    const outside = rig.node('echo').connect({ subnets: ['10.77.75.0/25', '10.77.76.0/24'] });
    const r = await outside.result;
    assert.equal(r.welcome, false);
    assert.match(
      (r as { reason: string }).reason,
      /subnet 10\.77\.76\.0\/24 is not among the subnets tower\.yaml gives node "echo"/,
    );
    const mallory = rig.node('mallory').connect({ subnets: ['10.77.75.64/26'] });
    const m = await mallory.result;
    assert.equal(m.welcome, false);
    assert.match((m as { reason: string }).reason, /overlaps 10\.77\.75\.0\/24, which is node "echo"'s/);
    const inside = rig.node('echo').connect({ subnets: ['10.77.75.0/25'] });
    assert.equal((await inside.result).welcome, true);
    inside.close();
  });

  test("tower.yaml's subnets win over a claim registered before they were given", async () => {
    // foxtrot registers a subnet while nobody is given it; then tower.yaml gives it to golf
    const foxtrot = rig.node('foxtrot').connect({ subnets: ['10.77.78.0/24', '10.77.79.0/24'] });
    assert.equal((await foxtrot.result).welcome, true);
    foxtrot.close();
    await rig.restart({ nodes: [...NODES, { name: 'golf', subnets: ['10.77.78.0/24'] }] });
    const golf = rig.node('golf').connect({ subnets: ['10.77.78.0/24'] });
    assert.equal((await golf.result).welcome, true, 'golf may register what tower.yaml gives it');
    const nodes = (await rig.api('nodes')).body as Json[];
    assert.deepEqual(
      nodes.find((n) => n.name === 'foxtrot')?.subnets,
      ['10.77.79.0/24'],
      'taken from foxtrot',
    );
    const again = rig.node('foxtrot').connect({ subnets: ['10.77.78.0/24', '10.77.79.0/24'] });
    const r = await again.result;
    assert.equal(r.welcome, false);
    assert.match((r as { reason: string }).reason, /overlaps 10\.77\.78\.0\/24, which is node "golf"'s/);
    golf.close();
  });
});
