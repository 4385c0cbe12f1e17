/**
 * Disk rules both ends' spools share: a full disk is `SpoolFullError` (the write that found it
 * is undone, nothing already stored is touched), a directory is filled whole or not at all,
 * and the sizes and hashes the metrics and the audit report.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

export class SpoolFullError extends Error {}

export function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Runs a write to a spool; a full disk becomes SpoolFullError(`full`), other errors pass. */
export function spoolWrite<T>(full: string, write: () => T): T {
  try {
    return write();
  } catch (err) {
    if (isDiskFull(err)) throw new SpoolFullError(full);
    throw err;
  }
}

/** Makes `dir` anew and fills it with `fill`; on any failure the directory goes again. */
export function freshDir<T>(dir: string, full: string, fill: () => T): T {
  try {
    spoolWrite(full, () => {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { mode: 0o700 });
    });
    return fill();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export async function sha256File(path: string): Promise<string> {
  const { createReadStream } = await import('node:fs');
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Total size of the files under `dir` (the spool size metric). */
export function duBytes(dir: string): number {
  let total = 0;
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += duBytes(p);
    else if (e.isFile()) total += statSync(p, { throwIfNoEntry: false })?.size ?? 0;
  }
  return total;
}
