import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const root = new URL('..', import.meta.url).pathname;

function npx(...args: string[]) {
  return spawnSync('npx', ['--no-install', ...args], { cwd: root, encoding: 'utf8', timeout: 300_000 });
}

test('lint and format (biome) are clean', () => {
  const r = npx('biome', 'check', '.');
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
});

test('the type checker (tsc --noEmit, strict) is clean', () => {
  const r = npx('tsc', '--noEmit');
  assert.equal(r.status, 0, r.stdout);
});

test('the dashboard (web/, DOM types) type-checks clean', () => {
  const r = npx('tsc', '--noEmit', '-p', 'web');
  assert.equal(r.status, 0, r.stdout);
});
