/**
 * Every eBPF object the node loads is checked against the signed manifest: qos.bpf.o (the
 * QoS enforcer), flowmon.bpf.o in the plain node monitor (`node run --iface`) and in
 * `tacmesh monitor`. An unsigned (unlisted), tampered or rolled-back object is refused
 * before the kernel sees it; a signed one is loaded for real. `tacmesh monitor --unsigned`
 * is the one way to load an unchecked object, and it says so.
 *
 * Addresses: 10.77.163.0/24. Needs root (eBPF, namespaces).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { objectPath } from '../bpf/paths.js';
import { cleanLeftovers, Lab } from '../netlab/lab.js';
import { type BpfTrust, generateSigningKey, SERIAL_FILE, signManifest } from '../pki/bpf-manifest.js';
import { initCa, issue, pkiPaths } from '../pki/ca.js';
import { run } from '../shared/exec.js';
import { QosEnforcer } from './qos/enforcer.js';
import { NodeRuntime } from './runtime.js';

const dir = mkdtempSync(join(tmpdir(), 'tacmesh-signed-objects-'));
const MAIN = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
const lab = new Lab();
let ns = '';
let iface = '';

// One signing key the node trusts, and the node's serial file.
const signing = generateSigningKey();
const publicKey = join(dir, 'signing.pub');
writeFileSync(publicKey, signing.publicPem, { mode: 0o644 });
const serialFile = join(dir, 'node-state', SERIAL_FILE);

/** A manifest of `programs` signed by the trusted key with `serial`, as the node would be given it. */
function signed(name: string, programs: string[], serial: number, objectDir?: string): BpfTrust {
  const files = programs.map((p) => (objectDir ? join(objectDir, `${p}.bpf.o`) : objectPath(p)));
  const manifest = join(dir, `${name}.json`);
  writeFileSync(
    manifest,
    JSON.stringify(signManifest(files, createPrivateKey(signing.privatePem), { serial })),
  );
  return { manifest, trustedKeys: [publicKey], serialFile, ...(objectDir ? { objectDir } : {}) };
}

/** How many programs of this name the kernel holds. */
async function loaded(name: string): Promise<number> {
  const { stdout } = await run('bpftool', ['-j', 'prog', 'show']);
  return (JSON.parse(stdout || '[]') as { name?: string }[]).filter((p) => p.name === name).length;
}

before(async () => {
  if (process.geteuid?.() !== 0) assert.fail('this test needs root: it loads eBPF objects into the kernel');
  ns = await lab.netns('so', { ipv6: false });
  const peer = await lab.netns('sp', { ipv6: false });
  const v = await lab.veth({ netns: ns, addr: '10.77.163.1/24' }, { netns: peer, addr: '10.77.163.2/24' });
  iface = v.a;
});
after(async () => {
  await lab.cleanup();
  await cleanLeftovers(new RegExp(`^${lab.prefix}`));
  rmSync(dir, { recursive: true, force: true });
});

test('qos.bpf.o: signed, the kernel loads it; without a manifest, unlisted, tampered or rolled back, it is refused', async () => {
  const before = await loaded('qos_egress');
  const now = Math.floor(Date.now() / 1000);
  assert.throws(() => QosEnforcer.open({ netns: ns }), /QoS needs a signed eBPF manifest/);
  assert.throws(
    () => QosEnforcer.open({ netns: ns, bpf: signed('flowmon-only', ['flowmon'], now) }),
    /refusing eBPF object .*qos\.bpf\.o: it is not in the signed manifest/,
  );
  const objects = join(dir, 'tampered');
  mkdirSync(objects);
  copyFileSync(objectPath('qos'), join(objects, 'qos.bpf.o'));
  const tampered = signed('tampered', ['qos'], now, objects);
  const bytes = readFileSync(join(objects, 'qos.bpf.o'));
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0xff, bytes.length - 100);
  writeFileSync(join(objects, 'qos.bpf.o'), bytes);
  assert.throws(
    () => QosEnforcer.open({ netns: ns, bpf: tampered }),
    /refusing eBPF object .*qos\.bpf\.o: SHA-256 .* is not the signed/,
  );
  assert.equal(await loaded('qos_egress'), before, 'nothing refused reached the kernel');

  const enforcer = QosEnforcer.open({ netns: ns, bpf: signed('current', ['qos'], now + 10) });
  try {
    assert.equal(await loaded('qos_egress'), before + 1, 'the signed object is loaded');
  } finally {
    await enforcer.close();
  }
  assert.equal(readFileSync(serialFile, 'utf8').trim(), String(now + 10), 'the node kept the serial');
  // An older manifest, validly signed by the same trusted key (it once listed other objects).
  assert.throws(
    () => QosEnforcer.open({ netns: ns, bpf: signed('older', ['qos'], now) }),
    new RegExp(`serial ${now} is older than serial ${now + 10}, which this node already accepted`),
  );
  assert.equal(await loaded('qos_egress'), before, 'the rolled back object was not loaded');
});

test('the plain node monitor (`node run --iface`): refused without a manifest or with a rolled back one; a signed flowmon is loaded', async () => {
  // Without a manifest the command stops before loading anything.
  const pki = join(dir, 'pki');
  await initCa(pki);
  await issue(pki, 'node', 'n1');
  const r = spawnSync(
    process.execPath,
    [
      ...process.execArgv,
      MAIN,
      'node',
      'run',
      '--name',
      'n1',
      '--iface',
      iface,
      '--netns',
      ns,
      '--tower',
      '127.0.0.1:1',
      '--pki',
      pki,
      '--state-dir',
      join(dir, 'cli-state'),
      '--keep-capabilities',
    ],
    // A liveness guard only: a node run that does not refuse would run until stopped.
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.notEqual(r.status, 0, 'node run without a manifest must not run');
  assert.match(
    r.stderr,
    /the node loads only signed eBPF objects: give --bpf-manifest and --bpf-trusted-key/,
  );

  const paths = pkiPaths(pki);
  const runtime = (bpf: BpfTrust) =>
    new NodeRuntime({
      name: 'n1',
      interfaces: [iface],
      netns: ns,
      stateDir: join(dir, 'node-state'),
      hello: { subnets: [], slices: [], position: null },
      tower: {
        tower: '127.0.0.1:1',
        tls: { caCert: paths.caCert, cert: paths.cert('n1'), key: paths.key('n1') },
      },
      bpf,
    });
  const accepted = Number(readFileSync(serialFile, 'utf8'));
  const before = await loaded('flowmon_ingress');
  const old = runtime(signed('node-older', ['flowmon'], accepted - 1));
  await assert.rejects(old.start(), /serial \d+ is older than serial \d+, which this node already accepted/);
  await old.stop();
  assert.equal(await loaded('flowmon_ingress'), before, 'the rolled back flowmon was not loaded');

  const node = runtime(signed('node-current', ['flowmon'], accepted + 1));
  try {
    await node.start();
    assert.equal(await loaded('flowmon_ingress'), before + 1, 'the verified flowmon is loaded');
  } finally {
    await node.stop();
  }
});

test('`tacmesh monitor`: refused without a manifest or with a rolled back one; --unsigned runs and says so; signed runs', () => {
  const monitor = (extra: string[]) =>
    spawnSync(
      process.execPath,
      [
        ...process.execArgv,
        MAIN,
        'monitor',
        '-i',
        iface,
        '--netns',
        ns,
        '--json',
        '--interval',
        '200',
        '--duration',
        '1',
        '--state-dir',
        join(dir, 'monitor-state'),
        ...extra,
      ],
      { encoding: 'utf8', input: '', timeout: 60_000 },
    );
  const stats = (out: string) => out.split('\n').filter((l) => l.includes('"type":"stats"')).length;

  const none = monitor([]);
  assert.notEqual(none.status, 0, 'no manifest, no --unsigned: refused');
  assert.match(
    none.stderr,
    /loads only signed eBPF objects: give --bpf-manifest and --bpf-trusted-key, or --unsigned/,
  );
  assert.equal(stats(none.stdout), 0);

  const unsigned = monitor(['--unsigned']);
  assert.equal(unsigned.status, 0, unsigned.stderr);
  assert.match(
    unsigned.stderr,
    /loading an UNSIGNED eBPF object \(--unsigned\)/,
    'the unchecked load is logged',
  );
  assert.ok(stats(unsigned.stdout) > 0, 'and it monitors');

  const serial = Math.floor(Date.now() / 1000) + 100;
  const trustArgs = (t: BpfTrust) => ['--bpf-manifest', t.manifest, '--bpf-trusted-key', ...t.trustedKeys];
  const current = monitor(trustArgs(signed('monitor-current', ['flowmon'], serial)));
  assert.equal(current.status, 0, current.stderr);
  assert.ok(stats(current.stdout) > 0, 'a signed flowmon monitors');
  assert.doesNotMatch(current.stderr, /UNSIGNED/);

  const older = monitor(trustArgs(signed('monitor-older', ['flowmon'], serial - 1)));
  assert.notEqual(older.status, 0, 'a rolled back manifest is refused');
  assert.match(older.stderr, new RegExp(`serial ${serial - 1} is older than serial ${serial}`));
  assert.equal(stats(older.stdout), 0);

  const unlisted = monitor(trustArgs(signed('monitor-unlisted', ['qos'], serial)));
  assert.notEqual(unlisted.status, 0, 'a manifest that does not list flowmon.bpf.o is refused');
  assert.match(unlisted.stderr, /flowmon\.bpf\.o: it is not in the signed manifest/);
});
