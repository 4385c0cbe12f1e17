/** A diode demo that cannot run says why before it makes anything: a missing program is named with its package. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { run } from '../../shared/exec.js';
import { findProgram } from '../../shared/programs.js';
import { DiodeDemo, readDemoState } from './demo.js';

const bin = mkdtempSync(join(tmpdir(), 'tacmesh-path-'));
after(() => rmSync(bin, { recursive: true, force: true }));

test('without ping, `tacmesh diode demo` fails before it makes anything, naming ping and its package', async () => {
  for (const p of ['ip', 'tc', 'nsenter', 'sysctl']) {
    const real = findProgram(p);
    assert.ok(real, `${p} is installed (scripts/setup.sh)`);
    symlinkSync(real, join(bin, p));
  }
  const before = (await run('ip', ['netns', 'list'])).stdout;
  const saved = process.env.PATH;
  process.env.PATH = bin;
  let error: Error | undefined;
  try {
    await DiodeDemo.up({ link: { rateMbit: 10, lossPct: 0, burst: 1 } }, () => undefined);
  } catch (err) {
    error = err as Error;
  } finally {
    process.env.PATH = saved;
  }
  assert.match(error?.message ?? '', /ping is not installed or not executable \(needed for the diode demo\)/);
  assert.match(error?.message ?? '', /Debian package "iputils-ping"/);
  assert.equal(readDemoState(), undefined, 'no state file');
  assert.equal((await run('ip', ['netns', 'list'])).stdout, before, 'no namespace was made');
});
