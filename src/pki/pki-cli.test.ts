import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { test } from 'node:test';
import { identityOf } from './ca.js';

const bin = new URL('../../bin/tacmesh.js', import.meta.url).pathname;
const tacmesh = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

test('`tacmesh pki init` and `pki issue` make a CA and certificates that openssl verifies', () => {
  const dir = mkdtempSync('/tmp/tacmesh-pki-');
  try {
    assert.equal(tacmesh('pki', 'init', '--dir', `${dir}/pki`).status, 0);
    assert.equal(
      tacmesh('pki', 'issue', 'tower', 'tower', '--dir', `${dir}/pki`, '--alt', '10.77.240.254').status,
      0,
    );
    assert.equal(tacmesh('pki', 'issue', 'node', 'alpha', '--dir', `${dir}/pki`).status, 0);
    for (const name of ['tower', 'alpha']) {
      const v = spawnSync('openssl', ['verify', '-CAfile', `${dir}/pki/ca.crt`, `${dir}/pki/${name}.crt`], {
        encoding: 'utf8',
      });
      assert.equal(v.status, 0, v.stderr);
      assert.equal(statSync(`${dir}/pki/${name}.key`).mode & 0o777, 0o600, 'keys are owner-only');
    }
    assert.deepEqual(
      (({ name, role }) => ({ name, role }))(identityOf(readFileSync(`${dir}/pki/alpha.crt`))),
      { name: 'alpha', role: 'node' },
    );
    const text = spawnSync('openssl', ['x509', '-in', `${dir}/pki/tower.crt`, '-noout', '-text'], {
      encoding: 'utf8',
    }).stdout;
    assert.match(text, /IP Address:10\.77\.240\.254/);
    const again = tacmesh('pki', 'init', '--dir', `${dir}/pki`);
    assert.notEqual(again.status, 0, 'a second init refuses to overwrite the CA');
    assert.match(again.stderr, /already there/);
    const bad = tacmesh('pki', 'issue', 'admin', 'x', '--dir', `${dir}/pki`);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /role must be tower or node/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
