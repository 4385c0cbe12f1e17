import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { SeqAllocator } from './seq.js';
import { TowerLink } from './tower-client.js';

const dir = mkdtempSync('/tmp/tacmesh-towerlink-');
after(() => rmSync(dir, { recursive: true, force: true }));

const link = () =>
  new TowerLink(
    {
      node: 'n1',
      tower: '127.0.0.1:1',
      tls: { caCert: '', cert: '', key: '' },
      hello: () => ({ subnets: [], slices: [], position: null }),
      onMonitorConfig: () => undefined,
      spool: { dir: `${dir}/spool` },
    },
    new SeqAllocator(dir),
  );

test('agent events held while the tower is away survive a restart of the node', () => {
  const first = link();
  const event = {
    timeMs: 1,
    entity: 'slice a',
    problem: 'gone',
    action: 'recreate',
    ok: true,
    cause: 'x',
    error: '',
    tookMs: 5,
  };
  first.sendSoon({ event });
  first.sendSoon({ event: { ...event, timeMs: 2 } });
  assert.equal(first.heldCount, 2);
  const second = link(); // as after kill -9: nothing was sent
  assert.equal(second.heldCount, 2);
});
