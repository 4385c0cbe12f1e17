/**
 * The signed manifest of the eBPF objects: each object's SHA-256 and size, signed with
 * ed25519 (node:crypto). A node verifies every object against it before loading it and
 * refuses one that is not listed, has another hash, or a manifest no trusted key signed.
 *
 * File format (JSON): { "manifest": "<the body as JSON text>", "signature": "<base64>" }.
 * The signature covers the body's exact bytes, so no canonical JSON is needed. Several
 * trusted public keys may be configured at once: that is how a signing key is rotated.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { readSecretFile } from '../shared/secret-file.js';

export const MANIFEST_VERSION = 1;

export interface ManifestEntry {
  /** The object's file name (no directory), e.g. flowmon.bpf.o */
  file: string;
  sha256: string;
  size: number;
}

export interface ManifestBody {
  version: number;
  created: string;
  /** Which key signed it: the first 16 hex digits of SHA-256 over the public key (SPKI DER). */
  keyId: string;
  objects: ManifestEntry[];
}

export interface SignedManifest {
  manifest: string;
  signature: string;
}

export class ManifestError extends Error {
  override name = 'ManifestError';
}

/** An object that does not match the manifest: the message names the file. */
export class TamperedObjectError extends Error {
  override name = 'TamperedObjectError';
  constructor(
    readonly file: string,
    why: string,
  ) {
    super(`refusing eBPF object ${file}: ${why}`);
  }
}

export function keyId(key: KeyObject): string {
  const spki = (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex').slice(0, 16);
}

export function generateSigningKey(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** The private signing key, from a file only its owner can read. */
export function readSigningKey(path: string): KeyObject {
  const key = createPrivateKey(readSecretFile(path));
  if (key.asymmetricKeyType !== 'ed25519') throw new ManifestError(`${path}: not an ed25519 private key`);
  return key;
}

export function readPublicKey(path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(readFileSync(path));
  } catch (err) {
    throw new ManifestError(`${path}: not a public key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new ManifestError(`${path}: not an ed25519 public key`);
  return key;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

export function signManifest(objectPaths: string[], key: KeyObject, now = new Date()): SignedManifest {
  const names = objectPaths.map((p) => basename(p));
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new ManifestError(`two objects are named ${dup}: the manifest lists objects by file name`);
  const body: ManifestBody = {
    version: MANIFEST_VERSION,
    created: now.toISOString(),
    keyId: keyId(key),
    objects: objectPaths.map((p) => {
      const bytes = readFileSync(p);
      return { file: basename(p), sha256: sha256(bytes), size: bytes.length };
    }),
  };
  const text = JSON.stringify(body);
  return { manifest: text, signature: sign(null, Buffer.from(text), key).toString('base64') };
}

export function readManifest(path: string): SignedManifest {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ManifestError(`${path}: cannot read the eBPF manifest: ${(err as Error).message}`);
  }
  const m = data as Partial<SignedManifest>;
  if (typeof m?.manifest !== 'string' || typeof m.signature !== 'string') {
    throw new ManifestError(`${path}: not an eBPF manifest (wants "manifest" and "signature" strings)`);
  }
  return { manifest: m.manifest, signature: m.signature };
}

/** The manifest's body, once a trusted key's signature over it checks out. */
export function verifyManifest(signed: SignedManifest, keys: KeyObject | KeyObject[]): ManifestBody {
  const trusted = Array.isArray(keys) ? keys : [keys];
  const signature = Buffer.from(signed.signature, 'base64');
  const ok = trusted.some((k) => verify(null, Buffer.from(signed.manifest), k, signature));
  if (!ok) {
    throw new ManifestError(
      `the eBPF manifest's signature does not verify with any trusted key (${trusted.map(keyId).join(', ') || 'none'})`,
    );
  }
  const body = JSON.parse(signed.manifest) as ManifestBody;
  if (body.version !== MANIFEST_VERSION)
    throw new ManifestError(`eBPF manifest version ${body.version} is not ${MANIFEST_VERSION}`);
  return body;
}

/**
 * Checks one object file against the signed manifest; returns the bytes it checked.
 * Throws TamperedObjectError naming the file when it is unlisted or its hash differs.
 */
export function verifyObject(
  path: string,
  manifest: SignedManifest,
  publicKey: KeyObject | KeyObject[],
): Buffer {
  const body = verifyManifest(manifest, publicKey);
  const entry = body.objects.find((o) => o.file === basename(path));
  if (!entry) throw new TamperedObjectError(path, 'it is not in the signed manifest');
  const bytes = readFileSync(path);
  const digest = sha256(bytes);
  if (digest !== entry.sha256 || bytes.length !== entry.size) {
    throw new TamperedObjectError(
      path,
      `SHA-256 ${digest} (${bytes.length} bytes) is not the signed ${entry.sha256} (${entry.size} bytes)`,
    );
  }
  return bytes;
}

/**
 * Verifies an object and writes the verified bytes to a fresh private directory; returns the
 * copy's path. Loading the copy, not the original, means nobody can swap the file between
 * the check and the load.
 */
export function verifiedCopy(
  path: string,
  manifest: SignedManifest,
  publicKey: KeyObject | KeyObject[],
): string {
  const bytes = verifyObject(path, manifest, publicKey);
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-bpf-'));
  chmodSync(dir, 0o700);
  const copy = join(dir, basename(path));
  writeFileSync(copy, bytes, { mode: 0o600 });
  return copy;
}
