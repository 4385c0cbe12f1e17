/**
 * Revoked certificates: a deny-list of serials, one a line (hex, any case, colons allowed),
 * each optionally followed by a comment after '#'. `tacmesh pki revoke` appends to it; the
 * tower re-reads it whenever it changes, and refuses a peer whose certificate serial is on it.
 *
 *   # tacmesh revoked certificates
 *   1f3a…9c  # node alpha, revoked 2026-12-01T09:00:00Z
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { writeFileAtomic } from '../shared/atomic-file.js';

export const REVOKED_FILE = 'revoked.txt';

export function revokedPath(pkiDir: string): string {
  return join(pkiDir, REVOKED_FILE);
}

/** One spelling of a serial: lowercase hex, no colons, no leading zeros. */
export function normalizeSerial(serial: string): string {
  const hex = serial.trim().replace(/:/g, '').toLowerCase();
  if (!/^[0-9a-f]{1,64}$/.test(hex)) throw new Error(`"${serial}" is not a certificate serial (hex digits)`);
  return hex.replace(/^0+(?=.)/, '');
}

/** The serial and common name of a PEM or DER certificate. */
export function certSerial(cert: string | Buffer): { serial: string; name: string } {
  const c = new x509.X509Certificate(cert);
  return { serial: normalizeSerial(c.serialNumber), name: c.subjectName.getField('CN')[0] ?? '' };
}

export function parseRevoked(text: string, where: string): Set<string> {
  const out = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    try {
      out.add(normalizeSerial(line));
    } catch (err) {
      throw new Error(`${where}:${i + 1}: ${(err as Error).message}`);
    }
  });
  return out;
}

/**
 * Adds a serial (or the serial of a certificate file) to the list at `path`, written
 * atomically. Returns what was revoked, and whether it was on the list already.
 */
export function revoke(path: string, what: string): { serial: string; name: string; already: boolean } {
  const { serial, name } = existsSync(what)
    ? certSerial(readFileSync(what))
    : { serial: normalizeSerial(what), name: '' };
  const text = existsSync(path)
    ? readFileSync(path, 'utf8')
    : '# tacmesh revoked certificates (tacmesh pki revoke)\n';
  if (parseRevoked(text, path).has(serial)) return { serial, name, already: true };
  const note = `${name ? `${name}, ` : ''}revoked ${new Date().toISOString()}`;
  writeFileAtomic(path, `${text}${text.endsWith('\n') ? '' : '\n'}${serial}  # ${note}\n`, 0o644);
  return { serial, name, already: false };
}

/**
 * The list as the tower holds it: re-read when the file's size, time or inode change
 * (`refresh()`, cheap enough to call on every connection). A file that cannot be read keeps
 * the last list read and reports the error; a missing file is an empty list.
 */
export class RevocationList {
  private serials = new Set<string>();
  private stamp = '';

  constructor(readonly path: string) {
    this.refresh(true);
  }

  /** Re-reads the file if it changed; true when the list changed. Throws only when `strict`. */
  refresh(strict = false): boolean {
    let stamp = 'absent';
    try {
      const st = statSync(this.path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return this.failed(err as Error, strict);
    }
    if (stamp === this.stamp) return false;
    let next: Set<string>;
    try {
      next = stamp === 'absent' ? new Set() : parseRevoked(readFileSync(this.path, 'utf8'), this.path);
    } catch (err) {
      return this.failed(err as Error, strict);
    }
    this.stamp = stamp;
    this.error = undefined;
    const changed = next.size !== this.serials.size || [...next].some((s) => !this.serials.has(s));
    this.serials = next;
    return changed;
  }

  /** The error of the last failed read, if the last read failed. */
  error: string | undefined;

  private failed(err: Error, strict: boolean): false {
    if (strict) throw new Error(`cannot read the revocation list ${this.path}: ${err.message}`);
    this.error = err.message;
    return false;
  }

  has(serial: string | undefined): boolean {
    if (!serial) return false;
    try {
      return this.serials.has(normalizeSerial(serial));
    } catch {
      return false;
    }
  }

  get size(): number {
    return this.serials.size;
  }
}
