/**
 * tacmesh's own certificate authority: a CA, and certificates for the tower and for each
 * node, all ECDSA P-256, made with @peculiar/x509. The common name is the identity the
 * control plane checks: a node must say hello with its certificate's name; the role
 * (tower or node) is the organizational unit and the extended key usage.
 * Private keys are written 0600, certificates 0644.
 */
import { webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
// @peculiar/x509 resolves its ASN.1 services through tsyringe, which needs the polyfill first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

type CryptoKey = webcrypto.CryptoKey;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export type Role = 'tower' | 'node';

export interface IssueOptions {
  /** Extra DNS names and IP addresses the certificate is valid for (the tower's addresses). */
  altNames?: string[];
  days?: number;
  /** Start of validity (tests make expired certificates with a past window). */
  notBefore?: Date;
}

export interface PkiPaths {
  caCert: string;
  caKey: string;
  cert(name: string): string;
  key(name: string): string;
}

export function pkiPaths(dir: string): PkiPaths {
  return {
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    cert: (name) => join(dir, `${name}.crt`),
    key: (name) => join(dir, `${name}.key`),
  };
}

const NAME = /^[a-z0-9][a-z0-9.-]{0,62}$/;

export function checkName(name: string): void {
  if (!NAME.test(name)) {
    throw new Error(
      `"${name}" is not a valid name: use 1-63 of a-z, 0-9, '.', '-', starting with a letter or digit`,
    );
  }
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trimEnd()}\n-----END PRIVATE KEY-----\n`;
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
}

function writeSecret(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '1');
}

/** Creates the CA in `dir` (refuses to overwrite one). */
export async function initCa(dir: string, options: { days?: number; name?: string } = {}): Promise<PkiPaths> {
  const paths = pkiPaths(dir);
  if (existsSync(paths.caKey))
    throw new Error(`${paths.caKey} exists: a CA is already there (remove it to start over)`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const now = new Date();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${options.name ?? 'tacmesh CA'}`,
    notBefore: now,
    notAfter: new Date(now.getTime() + (options.days ?? 3650) * DAY_MS),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  writeSecret(paths.caKey, await exportKey(keys.privateKey));
  writeFileSync(paths.caCert, cert.toString('pem'));
  return paths;
}

/** Issues `<name>.crt` and `<name>.key` in `dir`, signed by the CA there. */
export async function issue(
  dir: string,
  role: Role,
  name: string,
  options: IssueOptions = {},
): Promise<PkiPaths> {
  checkName(name);
  const paths = pkiPaths(dir);
  if (!existsSync(paths.caKey))
    throw new Error(`no CA in ${dir}: run \`tacmesh pki init --dir ${dir}\` first`);
  const ca = new x509.X509Certificate(readFileSync(paths.caCert, 'utf8'));
  const caKey = await importKey(readFileSync(paths.caKey, 'utf8'));
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const notBefore = options.notBefore ?? new Date();
  const alt = [name, ...(role === 'tower' ? ['localhost', '127.0.0.1'] : []), ...(options.altNames ?? [])];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${name}, OU=${role}, O=tacmesh`,
    issuer: ca.subject,
    notBefore,
    notAfter: new Date(notBefore.getTime() + (options.days ?? 825) * DAY_MS),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(
        role === 'tower'
          ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
          : [x509.ExtendedKeyUsage.clientAuth],
      ),
      new x509.SubjectAlternativeNameExtension(
        [...new Set(alt)].map((value) => (isIP(value) ? { type: 'ip', value } : { type: 'dns', value })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  writeSecret(paths.key(name), await exportKey(keys.privateKey));
  writeFileSync(paths.cert(name), cert.toString('pem'));
  return paths;
}

/** The identity in a peer certificate (DER or PEM): common name and role. */
export function identityOf(cert: Buffer | string): { name: string; role: string; notAfter: Date } {
  const c = new x509.X509Certificate(cert);
  const name = c.subjectName.getField('CN')[0] ?? '';
  const role = c.subjectName.getField('OU')[0] ?? '';
  return { name, role, notAfter: c.notAfter };
}
