import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/program.js';

const bin = new URL('../bin/tacmesh.js', import.meta.url).pathname;

function tacmesh(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
}

/** `tacmesh args` to its end without blocking, so that several can run at once. */
function tacmeshAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [bin, ...args],
      { encoding: 'utf8', timeout: 30_000 },
      (_, stdout, stderr) => resolve({ status: child.exitCode, stdout, stderr }),
    );
  });
}

function commandPaths(cmd: Command, prefix: string[] = []): string[][] {
  return cmd.commands.flatMap((sub) => [
    [...prefix, sub.name()],
    ...commandPaths(sub, [...prefix, sub.name()]),
  ]);
}

test('the installed tacmesh prints help for itself and every subcommand', async () => {
  const top = tacmesh('--help');
  assert.equal(top.status, 0, top.stderr);
  assert.match(top.stdout, /^Usage: tacmesh/);
  const program = await buildProgram();
  const paths = commandPaths(program);
  assert.ok(paths.length > 0);
  // `tacmesh <component> …` loads that component's command and no other.
  for (const name of program.commands.map((c) => c.name())) {
    const only = await buildProgram(['node', 'tacmesh', name, '--help']);
    assert.deepEqual(
      only.commands.map((c) => c.name()),
      [name],
      `tacmesh ${name}: its own command only`,
    );
  }
  // One process per subcommand, a few at a time: each spends most of its second loading modules.
  const helps: Awaited<ReturnType<typeof tacmeshAsync>>[] = [];
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const i = next++;
      helps[i] = await tacmeshAsync([...paths[i]!, '--help']);
    }
  };
  await Promise.all(Array.from({ length: 2 * availableParallelism() }, worker));
  paths.forEach((path, i) => {
    const r = helps[i]!;
    assert.equal(r.status, 0, `${path.join(' ')} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: tacmesh ${path.join(' ')}`), path.join(' '));
    assert.ok(r.stdout.split('\n').length > 2, `${path.join(' ')} --help says something`);
  });
});

test('an unknown command fails with a clear message', () => {
  const r = tacmesh('frobnicate');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /unknown command 'frobnicate'/);
});

test('tacmesh services and qos check name the file, the field and the problem before calling the tower', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-cli-'));
  /** Writes `text` to `name` in dir, runs tacmesh with it, expects exit 1 and each line of `problems`. */
  const refuses = (name: string, text: string, args: string[], problems: string[]) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    const r = tacmesh(...args, '-f', file);
    assert.equal(r.status, 1, r.stderr);
    for (const p of problems)
      assert.ok(r.stderr.includes(`${file}: ${p}`), `"${file}: ${p}" in: ${r.stderr}`);
  };
  try {
    refuses(
      'services.yaml',
      'services:\n  - name: c2\n    precedence: urgent\n    instances:\n      - { node: n1, address: 10.77.1.300, port: 80 }\n',
      ['services', 'check'],
      [
        'services.0.precedence: Invalid option: expected one of "flash"|"immediate"|"priority"|"routine"',
        'services.0.instances.0.address: each octet must be 0..255',
      ],
    );
    refuses(
      'qos.yaml',
      'classes:\n  - { name: flash, priority: 0, guaranteedBps: 3000000, ceilingBps: 1000000, dscp: 46 }\nrules:\n  - { name: c2, class: flsh }\n',
      ['qos', 'apply'],
      ['class "flash": guaranteed 3 Mbit/s is above its ceiling 1 Mbit/s', 'rule "c2": unknown class "flsh"'],
    );
    refuses(
      'qos2.yaml',
      'classes:\n  - { name: flash, priority: 9, guaranteedBps: 0, dscp: 46 }\n',
      ['qos', 'check'],
      ['classes.0.priority: '],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
