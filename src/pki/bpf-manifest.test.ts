/** The signed eBPF manifest: sign, verify, tampering, unlisted objects, key rotation, secret files. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { sign } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readSecretFile } from '../shared/secret-file.js';
import {
  generateSigningKey,
  ManifestError,
  readManifest,
  readPublicKey,
  readSigningKey,
  signManifest,
  TamperedObjectError,
  verifiedCopy,
  verifyObject,
} from './bpf-manifest.js';
import { defaultObjectDir } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 'tacmesh-manifest-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function keyFiles(name: string) {
  const pair = generateSigningKey();
  writeFileSync(join(dir, name), pair.privatePem, { mode: 0o600 });
  writeFileSync(join(dir, `${name}.pub`), pair.publicPem);
  return { key: readSigningKey(join(dir, name)), pub: readPublicKey(join(dir, `${name}.pub`)) };
}

const object = join(dir, 'flowmon.bpf.o');
copyFileSync(join(defaultObjectDir(), 'flowmon.bpf.o'), object);

test('a signed object verifies; its verified copy has the same bytes', () => {
  const { key, pub } = keyFiles('k1');
  const manifest = signManifest([object], key);
  const copy = verifiedCopy(object, manifest, pub);
  assert.deepEqual(readFileSync(copy), readFileSync(object));
  rmSync(join(copy, '..'), { recursive: true });
});

test('a tampered, an unlisted, or an object signed by an untrusted key is refused, naming the file', () => {
  const { key, pub } = keyFiles('k2');
  const manifest = signManifest([object], key);
  const tampered = join(dir, 'tampered', 'flowmon.bpf.o');
  mkdirSync(join(dir, 'tampered'));
  const bytes = readFileSync(object);
  bytes.writeUInt8(bytes.readUInt8(200) ^ 1, 200);
  writeFileSync(tampered, bytes);
  assert.throws(
    () => verifyObject(tampered, manifest, pub),
    (err: Error) => {
      assert.ok(err instanceof TamperedObjectError);
      assert.match(
        err.message,
        new RegExp(`refusing eBPF object ${tampered}: SHA-256 [0-9a-f]{64} .* is not the signed`),
      );
      return true;
    },
  );
  const other = join(dir, 'linkem.bpf.o');
  copyFileSync(join(defaultObjectDir(), 'linkem.bpf.o'), other);
  assert.throws(
    () => verifyObject(other, manifest, pub),
    /refusing eBPF object .*linkem\.bpf\.o: it is not in the signed manifest/,
  );
  const stranger = keyFiles('k3');
  assert.throws(() => verifyObject(object, manifest, stranger.pub), ManifestError);
  // A manifest edited after signing (a hash swapped in) fails its signature.
  const forged = {
    ...manifest,
    manifest: manifest.manifest.replace(/"sha256":"[0-9a-f]+"/, `"sha256":"${'0'.repeat(64)}"`),
  };
  assert.throws(() => verifyObject(object, forged, pub), /signature does not verify/);
});

test('rotation: with the old and the new key trusted, manifests of either verify', () => {
  const old = keyFiles('old');
  const next = keyFiles('new');
  assert.ok(verifyObject(object, signManifest([object], old.key), [old.pub, next.pub]));
  assert.ok(verifyObject(object, signManifest([object], next.key), [old.pub, next.pub]));
  assert.throws(() => verifyObject(object, signManifest([object], old.key), [next.pub]), ManifestError);
});

test('`tacmesh pki sign-bpf` writes a manifest the node accepts, from a key file it makes, with the serial given', () => {
  const main = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
  const key = join(dir, 'cli.key');
  const out = join(dir, 'cli-manifest.json');
  const r = spawnSync(
    process.execPath,
    [
      ...process.execArgv,
      main,
      'pki',
      'sign-bpf',
      '--new-key',
      '--key',
      key,
      '--serial',
      '42',
      '--out',
      out,
      object,
    ],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /signed 1 objects with key [0-9a-f]{16} into .* \(serial 42\)/);
  assert.equal((JSON.parse(readManifest(out).manifest) as { serial: number }).serial, 42);
  assert.ok(verifyObject(object, readManifest(out), readPublicKey(`${key}.pub`)));
});

test('secrets are read only from files nobody else can read, never through a symbolic link', () => {
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'x', { mode: 0o640 });
  assert.throws(
    () => readSecretFile(secret),
    /mode 0640 lets group or others at this secret; allow only its owner: chmod 600/,
  );
  writeFileSync(join(dir, 'ok'), 'y', { mode: 0o600 });
  assert.equal(readSecretFile(join(dir, 'ok')).toString(), 'y');
  symlinkSync(join(dir, 'ok'), join(dir, 'link'));
  assert.throws(() => readSecretFile(join(dir, 'link')), /must not be a symbolic link/);
  writeFileSync(join(dir, 'lax.key'), generateSigningKey().privatePem, { mode: 0o644 });
  assert.throws(() => readSigningKey(join(dir, 'lax.key')), /lets group or others/);
});

test('rollback: a manifest older than the newest this node accepted is refused; a newer one is recorded', () => {
  const { key, pub } = keyFiles('serials');
  const serialFile = join(dir, 'state', 'bpf-manifest-serial');
  assert.ok(verifyObject(object, signManifest([object], key, { serial: 7 }), pub, serialFile));
  assert.equal(readFileSync(serialFile, 'utf8').trim(), '7', 'the accepted serial is kept');
  assert.ok(
    verifyObject(object, signManifest([object], key, { serial: 7 }), pub, serialFile),
    'the same again',
  );
  assert.throws(
    () => verifyObject(object, signManifest([object], key, { serial: 6 }), pub, serialFile),
    /serial 6 is older than serial 7, which this node already accepted .*cannot be rolled back/,
  );
  assert.ok(verifyObject(object, signManifest([object], key, { serial: 9 }), pub, serialFile));
  assert.equal(readFileSync(serialFile, 'utf8').trim(), '9');
  // A serial file that cannot be read fails closed instead of accepting every old manifest.
  writeFileSync(serialFile, '');
  assert.throws(
    () => verifyObject(object, signManifest([object], key, { serial: 1 }), pub, serialFile),
    /not a manifest serial/,
  );
});

test('a manifest without a serial (format version 1) is refused: re-sign it', () => {
  const { key, pub } = keyFiles('v1');
  const signed = signManifest([object], key);
  const body = JSON.parse(signed.manifest) as Record<string, unknown>;
  assert.equal(typeof body.serial, 'number', 'a new manifest carries a serial');
  const old: Record<string, unknown> = { ...body, version: 1 };
  delete old.serial;
  const text = JSON.stringify(old);
  const v1 = { manifest: text, signature: sign(null, Buffer.from(text), key).toString('base64') };
  assert.throws(() => verifyObject(object, v1, pub), /version 1 is not 2: re-sign it/);
});

test('trusted keys are read only from files that group and others cannot change, owned by root or this user', () => {
  const { publicPem } = generateSigningKey();
  const pub = join(dir, 'trust.pub');
  writeFileSync(pub, publicPem, { mode: 0o644 });
  assert.ok(readPublicKey(pub), 'mode 644, owned by this user: trusted');
  for (const mode of [0o664, 0o646]) {
    chmodSync(pub, mode);
    assert.throws(
      () => readPublicKey(pub),
      new RegExp(`mode 0${mode.toString(8)} lets group or others change this trusted key`),
    );
  }
  chmodSync(pub, 0o644);
  symlinkSync(pub, join(dir, 'trust-link.pub'));
  assert.throws(() => readPublicKey(join(dir, 'trust-link.pub')), /must not be a symbolic link/);
  if (process.geteuid?.() !== 0) assert.fail('this test needs root to give the key file to another user');
  chownSync(pub, 65534, 65534);
  assert.throws(() => readPublicKey(pub), /belongs to uid 65534, not to root or this process/);
});
