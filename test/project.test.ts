import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { test } from 'node:test';
import { run } from '../src/shared/exec.js';
import { findProgram, PROGRAMS, requirePrograms } from '../src/shared/programs.js';

const root = new URL('..', import.meta.url).pathname;

function npx(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'npx',
      ['--no-install', ...args],
      { cwd: root, encoding: 'utf8', timeout: 300_000 },
      (_, stdout, stderr) => resolve({ status: child.exitCode, stdout, stderr }),
    );
  });
}

/** The lint and the two type checks, started together at the first ask: each keeps a core busy for seconds. */
let started:
  | { biome: ReturnType<typeof npx>; tsc: ReturnType<typeof npx>; web: ReturnType<typeof npx> }
  | undefined;
function checks() {
  started ??= {
    biome: npx('biome', 'check', '.'),
    tsc: npx('tsc', '--noEmit'),
    web: npx('tsc', '--noEmit', '-p', 'web'),
  };
  return started;
}

test('lint and format (biome) are clean', async () => {
  const r = await checks().biome;
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
});

test('the type checker (tsc --noEmit, strict) is clean', async () => {
  const r = await checks().tsc;
  assert.equal(r.status, 0, r.stdout);
});

test('the dashboard (web/, DOM types) type-checks clean', async () => {
  const r = await checks().web;
  assert.equal(r.status, 0, r.stdout);
});

/** Every .ts file below `dir`, with its text. */
function sources(dir: string): { file: string; text: string }[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.includes('node_modules') && !f.startsWith('proto/gen'))
    .map((f) => ({ file: `${dir}/${f}`, text: readFileSync(join(root, dir, f), 'utf8') }));
}

test('the generated wire types are imported only through src/proto/index.ts', () => {
  const direct = ['src', 'test', 'bench', 'web/src']
    .flatMap(sources)
    .filter((s) => s.file !== 'src/proto/index.ts' && /from '[^']*proto\/gen\//.test(s.text))
    .map((s) => s.file);
  assert.deepEqual(
    direct,
    [],
    'import these from src/proto/index.ts (export the type there if it is missing)',
  );
});

test("the dashboard takes the tower's API types as types only: no tower code enters its bundle", () => {
  const imports = sources('web/src').flatMap((s) =>
    [
      ...s.text.matchAll(
        /^(import|export)(\s+type)?\s+(?:\*|\{[^}]*\})\s+from\s+'((?:\.\.\/)+src\/[^']+)'/gm,
      ),
    ].map((m) => ({ file: s.file, from: m[3], typeOnly: Boolean(m[2]) })),
  );
  assert.ok(
    imports.some((i) => i.from?.endsWith('/api/query-types.js')),
    'the scan finds the query types',
  );
  assert.deepEqual(
    imports.filter((i) => !i.typeOnly),
    [],
    'use `import type` / `export type` for these',
  );
});

/** The files the source `text` of `file` imports by relative path, from the root. */
function importsOf(file: string, text: string): string[] {
  return [...text.matchAll(/(?:from\s+|import\s*\(?\s*)'(\.{1,2}\/[^']+)'/g)].map((m) =>
    normalize(join(dirname(file), m[1]!)),
  );
}

/** Each relative import of the sources below `dir`: the importer and the imported file. */
function imports(dir: string): { from: string; to: string }[] {
  return sources(dir).flatMap(({ file, text }) => importsOf(file, text).map((to) => ({ from: file, to })));
}

/** The imports from files under `from` of files under any of `to`. */
function crossing(from: string, to: string[]): string[] {
  return imports(from)
    .filter((i) => i.from.startsWith(`${from}/`) && to.some((t) => i.to.startsWith(`${t}/`)))
    .map((i) => `${i.from} imports ${i.to}`);
}

test('the diode ends stand apart: receive/ and send/ never import each other, protocol/ neither', () => {
  assert.deepEqual(crossing('src/diode/receive', ['src/diode/send']), []);
  assert.deepEqual(crossing('src/diode/send', ['src/diode/receive']), []);
  const protocol = imports('src/diode/protocol').filter(
    (i) => i.to.startsWith('src/diode/') && !i.to.startsWith('src/diode/protocol/'),
  );
  assert.deepEqual(protocol, [], 'the wire format imports nothing else of the diode');
});

/**
 * What each folder of src/ may import besides itself, lowest first: a component never reaches
 * up, and the product never reaches into test/ (so dist/ stands alone). Tests may use any
 * layer and test/support.
 */
const LAYERS: Record<string, string[]> = {
  shared: [],
  bpf: ['shared'],
  proto: ['shared'],
  pki: ['shared', 'bpf'],
  netlab: ['shared', 'bpf'],
  diode: ['shared'],
  node: ['shared', 'bpf', 'proto', 'pki'],
  tower: ['shared', 'bpf', 'proto', 'pki', 'node'],
  testbed: ['shared', 'bpf', 'proto', 'pki', 'netlab', 'diode', 'node', 'tower'],
  cli: ['shared', 'bpf', 'proto', 'pki', 'netlab', 'diode', 'node', 'tower', 'testbed'],
};

/** Folders with more than their component's layer: the diode's demo builds its network with netlab. */
const SUBLAYERS: Record<string, string[]> = { 'diode/demo': ['netlab'] };

test('layers: the product imports nothing of test/, and no component imports one above it', () => {
  const folders = readdirSync(join(root, 'src'), { withFileTypes: true }).filter((d) => d.isDirectory());
  assert.deepEqual(
    folders.map((d) => d.name).sort(),
    Object.keys(LAYERS).sort(),
    'every src/ folder has its layer',
  );
  const product = imports('src').filter(
    (i) => !i.from.endsWith('.test.ts') && !i.from.startsWith('src/proto/gen/'),
  );
  const problems = product.flatMap(({ from, to }) => {
    const [, own] = from.split('/');
    const [top, other] = to.split('/');
    if (top !== 'src') return [`${from} imports ${to}, outside src/`];
    if (other === own || LAYERS[own!]?.includes(other!)) return [];
    const sub = Object.keys(SUBLAYERS).find((d) => from.startsWith(`src/${d}/`));
    if (sub && SUBLAYERS[sub]?.includes(other!)) return [];
    return [`${from} imports ${to}: ${own} may import ${LAYERS[own!]?.join(', ') || 'no other component'}`];
  });
  assert.deepEqual(problems, []);
});

/**
 * The product's files and the files each one loads: its imports, and the scripts it starts
 * (`scriptPath(import.meta.url, './x')`, a worker's `new URL(\`./x${ext}\`)`, netlab's `toolPath('x')`).
 */
function productGraph(): Map<string, string[]> {
  const script =
    /scriptPath\(import\.meta\.url, '(\.{1,2}\/[\w/-]+)'\)|new URL\(`(\.{1,2}\/[\w/-]+)\$\{ext\}`/g;
  const graph = new Map<string, string[]>();
  for (const { file, text } of sources('src')) {
    if (file.endsWith('.test.ts') || file.startsWith('src/proto/gen/')) continue;
    const loads = [
      ...importsOf(file, text).map((to) => to.replace(/\.js$/, '.ts')),
      ...[...text.matchAll(script)].map((m) => `${normalize(join(dirname(file), (m[1] ?? m[2])!))}.ts`),
      ...[...text.matchAll(/\btoolPath\('(\w+)'\)/g)].map((m) => `src/netlab/tools/${m[1]}.ts`),
    ];
    graph.set(file, loads);
  }
  return graph;
}

test('dist/ holds no test code: every product file is reached from the command, no kit sits under src/', () => {
  const build = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
  assert.deepEqual(build.include, ['src'], 'the build takes src/ only: no test/');
  const graph = productGraph();
  const reached = new Set<string>();
  const next = ['src/cli/main.ts'];
  for (let f = next.pop(); f; f = next.pop()) {
    if (reached.has(f)) continue;
    reached.add(f);
    next.push(...(graph.get(f) ?? []));
  }
  const unused = [...graph.keys()].filter((f) => !reached.has(f));
  assert.deepEqual(unused, [], 'not used by `tacmesh`: a test kit belongs in test/support');
});

/**
 * The programs the code starts, by the shapes it starts them in: run('x', …), spawn('x', …),
 * lab.exec(ns, 'x', …), startDetached(name, ns, 'x', …), `ip netns exec <ns> x`, a shell
 * line's first word, and what requirePrograms() names.
 */
function spawnedPrograms(): Map<string, string> {
  const shapes = [
    /\.(?:exec|spawn)\(\s*[\w.]+,\s*'([^']+)'/g,
    /startDetached\(\s*[^,]+,\s*[^,]+,\s*'([^']+)'/g,
    /'exec',\s*[\w.]+,\s*'([^']+)'/g,
    /'sh',\s*\[\s*'-c',\s*[`'"]([\w./-]+)/g,
    /requireProgram\(\s*'([^']+)'/g,
  ];
  const found = new Map<string, string>();
  const add = (name: string | undefined, file: string) => {
    if (name && !found.has(name)) found.set(name, file);
  };
  for (const source of ['src', 'test', 'bench'].flatMap(sources)) {
    const text = source.text.replace(/^\s*(\/\/|\*|\/\*).*$/gm, ''); // comments name programs too
    // run() and spawn() only where they are exec.js's and child_process's, not a local helper.
    const runners = [
      ...(/import \{[^}]*\brun\b[^}]*\} from '[./]*(?:src\/)?shared\/exec\.js'/.test(text) ? ['run'] : []),
      ...(text
        .match(/import \{([^}]*)\} from 'node:child_process'/)?.[1]
        ?.match(/\b(spawn|spawnSync|execFile|execFileSync)\b/g) ?? []),
    ];
    if (runners.length)
      for (const m of text.matchAll(new RegExp(`(?<![.\\w])(?:${runners.join('|')})\\(\\s*'([^']+)'`, 'g')))
        add(m[1], source.file);
    for (const re of shapes) for (const m of text.matchAll(re)) add(m[1], source.file);
    for (const m of text.matchAll(/requirePrograms\(\s*\[([^\]]*)\]/g))
      for (const n of (m[1] ?? '').matchAll(/'([^']+)'/g)) add(n[1], source.file);
  }
  return found;
}

/** The packages scripts/setup.sh installs (its PACKAGES list). */
function setupPackages(): Set<string> {
  const setup = readFileSync(join(root, 'scripts/setup.sh'), 'utf8');
  const list = setup.match(/^PACKAGES=\(\n([\s\S]*?)^\)/m)?.[1] ?? '';
  return new Set(
    list.split('\n').flatMap((line) => line.replace(/#.*/, '').trim().split(/\s+/).filter(Boolean)),
  );
}

/** Paths `path` may have in dpkg's database (usrmerge: /usr/sbin/ip is dpkg's /sbin/ip). */
function dpkgPaths(path: string): string[] {
  const merged = (p: string) => [
    p,
    p.replace(/^\/usr\/(s?bin)\//, '/$1/'),
    p.replace(/^\/(s?bin)\//, '/usr/$1/'),
  ];
  return [...new Set([...merged(path), ...merged(realpathSync(path))])];
}

/** The Debian package owning each of `paths` that one owns, in one dpkg-query (each run reads the whole database). */
function owningPackages(paths: string[]): Map<string, string> {
  const r = spawnSync('dpkg-query', ['-S', ...paths], { encoding: 'utf8' });
  const owners = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const at = line.indexOf(': ');
    if (line.startsWith('diversion') || at < 0) continue;
    owners.set(line.slice(at + 2), line.slice(0, at));
  }
  return owners;
}

test('every program the code starts is declared with its Debian package, and setup installs that package', () => {
  const spawned = spawnedPrograms();
  // The scan itself works: it finds programs started in each of its shapes.
  for (const known of ['babeld', 'ip', 'iperf3', 'influxd', 'nfcapd', 'udp-sender', 'chromium', 'sh'])
    assert.ok(spawned.has(known), `the scan finds ${known}`);
  const declared = PROGRAMS as Record<string, string | null>;
  const undeclared = [...spawned].filter(([name]) => !(name in declared)).map(([n, f]) => `${n} (${f})`);
  assert.deepEqual(undeclared, [], 'started in the code but missing from src/shared/programs.ts');
  const packages = setupPackages();
  const problems: string[] = [];
  const found: [name: string, pkg: string, path: string][] = [];
  for (const [name, pkg] of Object.entries(declared)) {
    if (pkg === null) continue; // Node.js's own (npx): the README's prerequisite
    if (!packages.has(pkg)) problems.push(`${name}: package ${pkg} is not in scripts/setup.sh's PACKAGES`);
    const path = findProgram(name);
    if (path) found.push([name, pkg, path]);
    else problems.push(`${name}: not found on PATH after setup`);
  }
  const owners = owningPackages(found.flatMap(([, , path]) => dpkgPaths(path)));
  for (const [name, pkg, path] of found) {
    const owner = dpkgPaths(path)
      .map((p) => owners.get(p))
      .find(Boolean);
    if (owner !== pkg) problems.push(`${name}: ${path} belongs to ${owner ?? 'no package'}, not ${pkg}`);
  }
  assert.deepEqual(problems, []);
});

test('a missing program is named with its package, before anything starts', async () => {
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    assert.throws(
      () => requirePrograms(['iperf3'], 'test traffic'),
      /iperf3 is not installed or not executable \(needed for test traffic\): it comes with the Debian package "iperf3"/,
    );
    await assert.rejects(run('ip', ['-V']), /ip is not installed or not executable.*"iproute2"/);
  } finally {
    process.env.PATH = saved;
  }
});
