/**
 * The signed manifest of the eBPF objects: each object's SHA-256 and size, signed with
 * ed25519 (node:crypto). A node verifies every object against it before loading it and
 * refuses one that is not listed, has another hash, or a manifest no trusted key signed.
 *
 * File format (JSON): { "manifest": "<the body as JSON text>", "signature": "<base64>" }.
 * The signature covers the body's exact bytes, so no canonical JSON is needed. Several
 * trusted public keys may be configured at once: that is how a signing key is rotated.
 *
 * Rollback: the body carries a serial (default: the signing time in seconds). A node keeps
 * the highest serial it accepted in a file of its state directory and refuses an older
 * manifest, so an old signed manifest (and the old objects it lists) cannot be put back.
 * The trusted keys are read only from files that group and others cannot change.
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
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { objectPath } from '../bpf/paths.js';
import { writeFileAtomic } from '../shared/atomic-file.js';
import { readSecretFile, readTrustFile } from '../shared/secret-file.js';

/** 2: with a serial (version 1 manifests had none: re-sign them). */
export const MANIFEST_VERSION = 2;

export interface ManifestEntry {
  /** The object's file name (no directory), e.g. flowmon.bpf.o */
  file: string;
  sha256: string;
  size: number;
}

export interface ManifestBody {
  version: number;
  /** Grows with every signing; a node refuses a manifest older than one it accepted. */
  serial: number;
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

/** A trusted public key, from a file that only root or its owner (this user) can change. */
export function readPublicKey(path: string): KeyObject {
  const pem = readTrustFile(path);
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new ManifestError(`${path}: not a public key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new ManifestError(`${path}: not an ed25519 public key`);
  return key;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

const isSerial = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 1;

export interface SignOptions {
  /** Default: the signing time in seconds since the epoch, so each signing outranks the last. */
  serial?: number;
  now?: Date;
}

export function signManifest(
  objectPaths: string[],
  key: KeyObject,
  options: SignOptions = {},
): SignedManifest {
  const now = options.now ?? new Date();
  const serial = options.serial ?? Math.floor(now.getTime() / 1000);
  if (!isSerial(serial)) throw new ManifestError(`serial ${serial} is not a whole number >= 1`);
  const names = objectPaths.map((p) => basename(p));
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new ManifestError(`two objects are named ${dup}: the manifest lists objects by file name`);
  const body: ManifestBody = {
    version: MANIFEST_VERSION,
    serial,
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
  if (body.version !== MANIFEST_VERSION) {
    throw new ManifestError(
      `eBPF manifest version ${body.version} is not ${MANIFEST_VERSION}: re-sign it with \`tacmesh pki sign-bpf\``,
    );
  }
  if (!isSerial(body.serial))
    throw new ManifestError(`the eBPF manifest's serial ${body.serial} is not valid`);
  return body;
}

/**
 * Refuses a manifest older than the newest this node accepted (kept in `serialFile`) and
 * records a newer one's serial, durably, before anything it lists is loaded.
 */
export function checkSerial(body: ManifestBody, serialFile: string): void {
  let text: string | undefined;
  try {
    text = readFileSync(serialFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const accepted = text === undefined ? 0 : Number(text.trim());
  if (text !== undefined && !isSerial(accepted)) {
    // Fail closed: without the serial, any old manifest would pass.
    throw new ManifestError(
      `${serialFile} holds "${text.trim().slice(0, 40)}", not a manifest serial: ` +
        `write the serial of the newest manifest you trust into it (see docs/operations.md)`,
    );
  }
  if (body.serial < accepted) {
    throw new ManifestError(
      `refusing the eBPF manifest: serial ${body.serial} is older than serial ${accepted}, ` +
        `which this node already accepted (${serialFile}): a signed manifest cannot be rolled back`,
    );
  }
  if (body.serial > accepted) {
    mkdirSync(dirname(serialFile), { recursive: true, mode: 0o700 });
    writeFileAtomic(serialFile, `${body.serial}\n`);
  }
}

/**
 * Checks one object file against the signed manifest; returns the bytes it checked.
 * Throws TamperedObjectError naming the file when it is unlisted or its hash differs.
 */
export function verifyObject(
  path: string,
  manifest: SignedManifest,
  publicKey: KeyObject | KeyObject[],
  serialFile?: string,
): Buffer {
  const body = verifyManifest(manifest, publicKey);
  if (serialFile) checkSerial(body, serialFile);
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
  serialFile?: string,
): string {
  const bytes = verifyObject(path, manifest, publicKey, serialFile);
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-bpf-'));
  chmodSync(dir, 0o700);
  const copy = join(dir, basename(path));
  writeFileSync(copy, bytes, { mode: 0o600 });
  return copy;
}

/** What a node trusts its eBPF objects by: the config's bpf section and its serial file. */
export interface BpfTrust {
  /** The signed manifest (`tacmesh pki sign-bpf`). */
  manifest: string;
  /** Public keys (PEM) trusted to sign it. */
  trustedKeys: string[];
  /** Where the objects are (default: the build output, bpf/.output). */
  objectDir?: string;
  /** Where the node keeps the newest serial it accepted (in its state directory). */
  serialFile: string;
}

/** The file name of the serial in a node's state directory. */
export const SERIAL_FILE = 'bpf-manifest-serial';

/**
 * Every eBPF load of the node goes through here: `program`'s object (e.g. "qos" for
 * qos.bpf.o) is checked against the signed manifest — trusted keys' file modes, signature,
 * serial not rolled back, SHA-256 — and `load` gets the path of a private verified copy,
 * removed once `load` returns (the kernel holds the loaded object by then).
 */
export function withVerifiedObject<T>(program: string, trust: BpfTrust, load: (path: string) => T): T {
  const file = trust.objectDir ? join(trust.objectDir, `${program}.bpf.o`) : objectPath(program);
  const copy = verifiedCopy(
    file,
    readManifest(trust.manifest),
    trust.trustedKeys.map(readPublicKey),
    trust.serialFile,
  );
  const remove = () => rmSync(dirname(copy), { recursive: true, force: true });
  let result: T;
  try {
    result = load(copy);
  } catch (err) {
    remove();
    throw err;
  }
  if (result instanceof Promise) return result.finally(remove) as T;
  remove();
  return result;
}
