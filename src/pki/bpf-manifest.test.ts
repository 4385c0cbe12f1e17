/** The signed eBPF manifest: sign, verify, tampering, unlisted objects, key rotation, secret files. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
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

test('`tacmesh pki sign-bpf` writes a manifest the node accepts, from a key file it makes', () => {
  const main = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
  const key = join(dir, 'cli.key');
  const out = join(dir, 'cli-manifest.json');
  const r = spawnSync(
    process.execPath,
    [...process.execArgv, main, 'pki', 'sign-bpf', '--new-key', '--key', key, '--out', out, object],
    {
      encoding: 'utf8',
    },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /signed 1 objects with key [0-9a-f]{16}/);
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
