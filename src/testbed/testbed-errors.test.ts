/**
 * A testbed that cannot come up says why at once: a missing babeld is named with its
 * package before anything is made, and a babeld that dies at start is reported with its
 * exit status and log, not by the route wait's timeout. Either way nothing is left behind.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { run } from '../shared/exec.js';
import { isAlive } from '../shared/proc.js';
import { findProgram } from '../shared/programs.js';
import { testbedConfigSchema } from './config.js';
import { readState, testbedUp } from './testbed.js';

const bin = mkdtempSync(join(tmpdir(), 'tacmesh-path-'));
after(() => rmSync(bin, { recursive: true, force: true }));

/** A PATH with the testbed's programs but babeld: none, or `babeld` given. */
function pathWithout(babeld?: string): string {
  const dir = mkdtempSync(join(bin, 'p-'));
  for (const p of [
    'ip',
    'tc',
    'nsenter',
    'sysctl',
    'bpftool',
    'nfcapd',
    'nfdump',
    'ping',
    'qemu-system-x86_64',
  ]) {
    const real = findProgram(p);
    assert.ok(real, `${p} is installed (scripts/setup.sh)`);
    symlinkSync(real, join(dir, p));
  }
  if (babeld) {
    writeFileSync(join(dir, 'babeld'), babeld);
    chmodSync(join(dir, 'babeld'), 0o755);
  }
  return dir;
}

async function upWithPath(path: string): Promise<Error> {
  const saved = process.env.PATH;
  process.env.PATH = path;
  try {
    const config = testbedConfigSchema.parse({ apiPort: 19443 + (process.pid % 1000) });
    await testbedUp(config, (m) => process.stderr.write(`[testbed] ${m}\n`));
  } catch (err) {
    return err as Error;
  } finally {
    process.env.PATH = saved;
  }
  throw new Error('the testbed came up without a working babeld');
}

const namespaces = async () => (await run('ip', ['netns', 'list'])).stdout;

test('without babeld, `testbed up` fails before it makes anything, naming babeld and its package', async () => {
  const before = await namespaces();
  const err = await upWithPath(pathWithout());
  assert.match(err.message, /babeld is not installed or not executable \(needed for the testbed\)/);
  assert.match(err.message, /Debian package "babeld" \(apt-get install babeld/);
  assert.equal(readState(), undefined, 'no testbed state was written');
  assert.equal(await namespaces(), before, 'no namespace was made');
});

test('a babeld that exits at start is reported with its status and log, and the testbed is removed', async () => {
  const err = await upWithPath(
    pathWithout('#!/bin/sh\necho "babeld: cannot bind the Babel port" >&2\nexit 3\n'),
  );
  assert.match(err.message, /babeld-n\d \(PID (\d+)\) exited with status 3/);
  assert.match(err.message, /cannot bind the Babel port/, "the message carries babeld's own last words");
  assert.doesNotMatch(err.message, /timed out/);
  const prefix = err.message.match(/testbed\/(tm[0-9a-z]{5})\/logs/)?.[1];
  assert.ok(prefix, `the log path names the run: ${err.message}`);
  assert.equal(readState(), undefined, 'the state file is gone');
  assert.doesNotMatch(await namespaces(), new RegExp(prefix), "none of the run's namespaces is left");
  const { stdout } = await run('ps', ['-eo', 'pid,args']);
  const ours = stdout.split('\n').filter((l) => l.includes(`/testbed/${prefix}/`));
  assert.deepEqual(ours, [], 'no process of the run is left');
  assert.ok(!isAlive(Number(err.message.match(/PID (\d+)/)?.[1])));
});
