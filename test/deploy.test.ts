import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { loadNodeConfig } from '../src/node/agent/config.js';
import { loadConfig, parseConfig } from '../src/shared/config.js';
import { run } from '../src/shared/exec.js';
import { siteSchema, towerConfigSchema } from '../src/tower/config.js';

const root = new URL('..', import.meta.url).pathname;
const units = readdirSync(`${root}deploy/systemd`).filter((f) => f.endsWith('.service'));

test('the example configs pass their schemas', () => {
  const tower = loadConfig(`${root}examples/tower.yaml`, towerConfigSchema);
  assert.equal(tower.metrics?.listen, '127.0.0.1:9109', 'metrics on loopback');
  loadConfig(`${root}examples/site.yaml`, siteSchema);
  loadNodeConfig(`${root}examples/node.yaml`);
});

test('the systemd units: one per service, clean for systemd-analyze, hardened', async () => {
  assert.deepEqual(units.sort(), [
    'tacmesh-diode-recv.service',
    'tacmesh-diode-send.service',
    'tacmesh-node.service',
    'tacmesh-tower.service',
  ]);
  for (const unit of units) {
    const path = `${root}deploy/systemd/${unit}`;
    const verify = await run('systemd-analyze', ['verify', path]);
    assert.equal(verify.stderr.trim(), '', `${unit}: ${verify.stderr}`);
    const { stdout } = await run('systemd-analyze', ['security', '--offline=yes', path]);
    const exposure = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(stdout)?.[1]);
    // The node needs CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN and network namespaces: it scores worse.
    const most = unit === 'tacmesh-node.service' ? 5.5 : 2;
    assert.ok(exposure <= most, `${unit}: exposure ${exposure} (at most ${most})`);
  }
});

test('tower metrics: off without the section, on loopback by default with it', () => {
  const base = 'pki: { dir: /etc/tacmesh/pki }\ntokens: /etc/tacmesh/tokens.yaml\n';
  assert.equal(parseConfig('t.yaml', base, towerConfigSchema).metrics, undefined);
  assert.deepEqual(parseConfig('t.yaml', `${base}metrics: {}\n`, towerConfigSchema).metrics, {
    listen: '127.0.0.1:9109',
  });
});
