import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { run } from '../shared/exec.js';
import { isAlive } from '../shared/proc.js';
import { newRunPrefix } from './lab.js';

const bin = new URL('../../bin/tacmesh.js', import.meta.url).pathname;

test('`tacmesh testbed clean` removes what a crashed run left: namespaces, host links, processes', async () => {
  // Make leftovers by hand, as a run killed before its finally would leave them.
  const prefix = newRunPrefix();
  const ns = `${prefix}-crashed`;
  await run('ip', ['netns', 'add', ns]);
  await run('ip', ['link', 'add', `${prefix}h0`, 'type', 'veth', 'peer', 'name', `${prefix}h1`]);
  const sleeper = spawnSync('ip', ['netns', 'exec', ns, 'sh', '-c', 'sleep 600 >/dev/null 2>&1 & echo $!'], {
    encoding: 'utf8',
  });
  const pid = Number(sleeper.stdout.trim());
  assert.ok(pid > 0);
  try {
    // Only this run's prefix: other tests' namespaces may be alive beside it.
    const r = spawnSync(process.execPath, [bin, 'testbed', 'clean', '--prefix', prefix], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`netns ${ns}`));
    assert.match(r.stdout, new RegExp(`link ${prefix}h0`));
    const { stdout: nsAfter } = await run('ip', ['netns', 'list']);
    assert.doesNotMatch(nsAfter, new RegExp(prefix));
    const { stdout: linksAfter } = await run('ip', ['link', 'show']);
    assert.doesNotMatch(linksAfter, new RegExp(prefix));
    assert.ok(!isAlive(pid), 'the process in the namespace is gone');
  } finally {
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    await run('ip', ['link', 'del', `${prefix}h0`]).catch(() => undefined);
  }
});
