/**
 * Files that must survive a power cut whole: written to a temporary file, fsynced, renamed
 * over the old one, and the directory fsynced so the rename itself is durable. A reader
 * sees the old content or the new one, never a half or an empty file.
 */
import { closeSync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Writes `data` to `file` atomically and durably (mode applies to a new file). */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncPath(dirname(file));
}

/** fsync of a file or a directory by path (a directory's fsync makes its renames durable). */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** writeFileAtomic in the background (libuv's threads): the caller's thread does not wait on the disk. */
export async function writeFileAtomicAsync(
  file: string,
  data: string | Uint8Array,
  mode = 0o600,
): Promise<void> {
  const tmp = `${file}.tmp`;
  const f = await open(tmp, 'w', mode);
  try {
    await f.writeFile(data);
    await f.sync();
  } finally {
    await f.close();
  }
  await rename(tmp, file);
  await fsyncPathAsync(dirname(file));
}

export async function fsyncPathAsync(path: string): Promise<void> {
  const f = await open(path, 'r');
  try {
    await f.sync();
  } finally {
    await f.close();
  }
}
