import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';

const BIN = new URL('../bin/tacmesh.js', import.meta.url).pathname;
const dir = mkdtempSync('/tmp/tacmesh-config-errors-');
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI; it must fail at once with exactly these lines on stderr (after "tacmesh: "). */
function fails(args: string[], expected: string[]): void {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
  assert.notEqual(r.status, 0, `${args.join(' ')} must fail`);
  const lines = r.stderr
    .replace(/^tacmesh: /, '')
    .trim()
    .split('\n');
  assert.deepEqual(lines, expected, r.stderr);
}

const UPLINK = 'uplinks:\n  - { interface: wan0, rateMbit: 10 }\n';

function file(name: string, text: string): string {
  const path = `${dir}/${name}`;
  writeFileSync(path, text);
  return path;
}

test('tower.yaml: a bad field, an unknown one, and files it names that are missing', () => {
  const bad = file('tower.yaml', 'control:\n  listen: 7443\npki:\n  dir: /x\ntokens: /x/t.yaml\nbogus: 1\n');
  fails(
    ['tower', 'run', '-c', bad],
    [
      `${bad}: control.listen: Invalid input: expected string, received number`,
      `${bad}: (top level): Unrecognized key: "bogus"`,
    ],
  );
  const missing = file('tower2.yaml', `pki:\n  dir: ${dir}/pki\ntokens: ${dir}/tokens.yaml\n`);
  fails(
    ['tower', 'run', '-c', missing],
    [
      `${missing}: pki.dir: ${dir}/pki/ca.crt: no such file`,
      `${missing}: pki.name: ${dir}/pki/tower.crt: no such file`,
      `${missing}: pki.name: ${dir}/pki/tower.key: no such file`,
      `${missing}: tokens: ${dir}/tokens.yaml: no such file`,
    ],
  );
});

test('node run: a bad node.yaml, and certificates missing from the directory it names', () => {
  const bad = file('node.yaml', `node: n1\nprefix: tmcfg01\n${UPLINK}slices: 3\n`);
  fails(
    ['node', 'run', '-c', bad, '--keep-capabilities'],
    [`${bad}: slices: Invalid input: expected array, received number`],
  );
  const noPki = file(
    'node2.yaml',
    `node: n1\nprefix: tmcfg01\n${UPLINK}slices: []\ntower:\n  address: 127.0.0.1:7443\n  pki: ${dir}/npki\n`,
  );
  fails(
    ['node', 'run', '-c', noPki, '--keep-capabilities'],
    [
      `${noPki}: tower.pki: ${dir}/npki/ca.crt: no such file`,
      `${noPki}: tower.pki: ${dir}/npki/n1.crt: no such file`,
      `${noPki}: tower.pki: ${dir}/npki/n1.key: no such file`,
    ],
  );
});
