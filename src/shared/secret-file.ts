/**
 * Secrets (private keys, tokens) come from files only — never from the command line, where
 * every user sees them in /proc/<pid>/cmdline — and only from files nobody else can read.
 * Trust files (the public keys eBPF manifests are checked with) may be read by anyone, but
 * only root or this process's user may be able to change them.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';

export class SecretFileError extends Error {
  override name = 'SecretFileError';
}

const octal = (mode: number) => mode.toString(8).padStart(4, '0');

/**
 * Opens `path` without following a symbolic link, runs `check` on the opened file's status
 * (so the file cannot be swapped in between) and returns its content.
 */
function readChecked(
  path: string,
  what: string,
  check: (st: Stats, uid: number | undefined) => void,
): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ELOOP') throw new SecretFileError(`${path}: a ${what} must not be a symbolic link`);
    throw new SecretFileError(`${path}: cannot open the ${what}: ${e.message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new SecretFileError(`${path}: a ${what} must be a regular file`);
    check(st, process.geteuid?.());
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a secret file, refusing one that is not a regular file, is a symbolic link, is
 * readable or writable by group or others, or belongs to another user than this process's.
 */
export function readSecretFile(path: string): Buffer {
  return readChecked(path, 'secret', (st, uid) => {
    const mode = st.mode & 0o777;
    if (mode & 0o077) {
      throw new SecretFileError(
        `${path}: mode ${octal(mode)} lets group or others at this secret; allow only its owner: chmod 600 ${path}`,
      );
    }
    if (uid !== undefined && st.uid !== uid) {
      throw new SecretFileError(`${path}: belongs to uid ${st.uid}, not to this process (uid ${uid})`);
    }
  });
}

/**
 * Reads a trust file (a public key that decides what runs), refusing one that is not a
 * regular file, is a symbolic link, is writable by group or others, or belongs to another
 * user than root or this process's: whoever can change it can make the node load anything.
 */
export function readTrustFile(path: string): Buffer {
  return readChecked(path, 'trusted key', (st, uid) => {
    const mode = st.mode & 0o777;
    if (mode & 0o022) {
      throw new SecretFileError(
        `${path}: mode ${octal(mode)} lets group or others change this trusted key: chmod 644 ${path}`,
      );
    }
    if (uid !== undefined && st.uid !== 0 && st.uid !== uid) {
      throw new SecretFileError(
        `${path}: belongs to uid ${st.uid}, not to root or this process (uid ${uid}): chown root ${path}`,
      );
    }
  });
}
