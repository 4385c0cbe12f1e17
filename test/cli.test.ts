import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/program.js';

const bin = new URL('../bin/tacmesh.js', import.meta.url).pathname;

function tacmesh(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
}

function commandPaths(cmd: Command, prefix: string[] = []): string[][] {
  return cmd.commands.flatMap((sub) => [
    [...prefix, sub.name()],
    ...commandPaths(sub, [...prefix, sub.name()]),
  ]);
}

test('the installed tacmesh prints help for itself and every subcommand', () => {
  const top = tacmesh('--help');
  assert.equal(top.status, 0, top.stderr);
  assert.match(top.stdout, /^Usage: tacmesh/);
  const paths = commandPaths(buildProgram());
  assert.ok(paths.length > 0);
  for (const path of paths) {
    const r = tacmesh(...path, '--help');
    assert.equal(r.status, 0, `${path.join(' ')} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: tacmesh ${path.join(' ')}`), path.join(' '));
    assert.ok(r.stdout.split('\n').length > 2, `${path.join(' ')} --help says something`);
  }
});

test('an unknown command fails with a clear message', () => {
  const r = tacmesh('frobnicate');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /unknown command 'frobnicate'/);
});
