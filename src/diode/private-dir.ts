/**
 * The diode's state directories (the receiver's stateDir, the sender's store.dir) hold what
 * replay protection and the spools rest on, so nobody else may write — or read — them. A
 * directory is created 0700; an existing one must be a real directory (not a symlink), owned
 * by the user running the diode, with no access for group or others. Otherwise the diode
 * refuses to start, saying what to fix. Checked at every start, not only when created.
 */
import { lstatSync, mkdirSync } from 'node:fs';

export class PrivateDirError extends Error {}

export function privateDir(dir: string, what: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory())
    throw new PrivateDirError(`${what} ${dir} is not a directory (a symbolic link?): refusing to use it`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw new PrivateDirError(
      `${what} ${dir} is owned by uid ${st.uid}, not by this user (${uid}): run chown ${uid} ${dir}`,
    );
  if ((st.mode & 0o077) !== 0)
    throw new PrivateDirError(
      `${what} ${dir} has mode ${(st.mode & 0o777).toString(8)}: group and others must have no access; run chmod 700 ${dir}`,
    );
}
