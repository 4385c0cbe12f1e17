/**
 * Secrets (private keys, tokens) come from files only — never from the command line, where
 * every user sees them in /proc/<pid>/cmdline — and only from files nobody else can read.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';

export class SecretFileError extends Error {
  override name = 'SecretFileError';
}

/**
 * Reads a secret file, refusing one that is not a regular file, is a symbolic link, is
 * readable or writable by group or others, or belongs to another user than this process's.
 * The checks are made on the opened file, so the file cannot be swapped in between.
 */
export function readSecretFile(path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ELOOP') throw new SecretFileError(`${path}: a secret must not be a symbolic link`);
    throw new SecretFileError(`${path}: cannot open the secret: ${e.message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new SecretFileError(`${path}: a secret must be a regular file`);
    const mode = st.mode & 0o777;
    if (mode & 0o077) {
      throw new SecretFileError(
        `${path}: mode ${mode.toString(8).padStart(4, '0')} lets group or others at this secret; ` +
          `allow only its owner: chmod 600 ${path}`,
      );
    }
    const uid = process.geteuid?.();
    if (uid !== undefined && st.uid !== uid) {
      throw new SecretFileError(`${path}: belongs to uid ${st.uid}, not to this process (uid ${uid})`);
    }
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}
