/**
 * The sender's file spool: a file is accepted — and only then acknowledged to whoever handed
 * it over (`send-file`, the outbox) — once its bytes and manifest are on disk under the
 * spool, fsynced, and renamed into place:
 *
 *   <dir>/files/.tmp-<id>/{origin.json, data}   while being accepted
 *   <dir>/files/<id>/{manifest.json, data}       accepted (a rename: atomic)
 *   <dir>/files/<id>/progress.json               where sending got to (resumed after a crash)
 *
 * A crash in the middle leaves a .tmp directory: if its data is there in full (moved from the
 * outbox) acceptance is finished on restart, otherwise it is removed and the source is still
 * where it was. A full disk fails acceptance with `SpoolFullError` and removes the partial
 * copy: nothing already spooled is touched. Files leave the spool when their last round has
 * been sent.
 */
import { createHash, randomInt } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';

export interface Manifest {
  /** Transfer id: the session id of the file's frames. */
  id: number;
  name: string;
  size: number;
  sha256: string;
  /** When the sender accepted the file (ISO 8601). */
  senderTime: string;
  chunkBytes: number;
  chunks: number;
}

export interface Progress {
  /** Rounds completely sent. */
  roundsDone: number;
  /** Next chunk of the round in progress. */
  nextChunk: number;
  /** When the first round started (ms since the epoch), for carousels by duration. */
  startedAt: number | null;
}

export class SpoolFullError extends Error {}

/** Writes `text` to `file` through a temporary file, fsync and rename: old or new, never half. */
export function writeAtomic(file: string, text: string | Buffer, sync = true): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeFileSync(fd, text);
    if (sync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

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

export interface SpooledFile {
  manifest: Manifest;
  dir: string;
  data: string;
  progress: Progress;
}

export class FileSpool {
  readonly dir: string;

  constructor(
    root: string,
    private readonly chunkBytes: number,
  ) {
    this.dir = join(root, 'files');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /**
   * Accepts a file: copies it (or, with `move`, renames it: the outbox) into the spool with
   * its manifest. Returns once it is durable; throws SpoolFullError when the disk is full.
   */
  async accept(path: string, options: { move?: boolean; name?: string } = {}): Promise<Manifest> {
    const id = randomInt(1, 2 ** 32 - 1);
    const tmp = join(this.dir, `.tmp-${id}`);
    const name = options.name ?? basename(path);
    try {
      mkdirSync(tmp, { mode: 0o700 });
      writeAtomic(
        join(tmp, 'origin.json'),
        JSON.stringify({ id, name, senderTime: new Date().toISOString() }),
      );
      const data = join(tmp, 'data');
      let moved = false;
      if (options.move) {
        try {
          renameSync(path, data);
          moved = true;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        }
      }
      if (!moved) {
        copyFileSync(path, data);
        fsyncPath(data);
      }
      const manifest = await this.finishAccept(tmp);
      if (options.move && !moved) unlinkSync(path);
      return manifest;
    } catch (err) {
      // Refused: the source goes back where it was (the outbox), the partial copy away.
      if (options.move && existsSync(join(tmp, 'data')) && !existsSync(path)) {
        try {
          renameSync(join(tmp, 'data'), path);
        } catch {
          // left for recover() to finish
        }
      }
      if (!existsSync(join(tmp, 'data')) || !options.move) rmSync(tmp, { recursive: true, force: true });
      if (isDiskFull(err)) throw new SpoolFullError(`spool ${this.dir} is full: ${name} refused`);
      throw err;
    }
  }

  /** Hashes the data of a .tmp directory, writes the manifest and renames it into place. */
  private async finishAccept(tmp: string): Promise<Manifest> {
    const origin = JSON.parse(readFileSync(join(tmp, 'origin.json'), 'utf8')) as {
      id: number;
      name: string;
      senderTime: string;
    };
    const data = join(tmp, 'data');
    const size = statSync(data).size;
    const manifest: Manifest = {
      id: origin.id,
      name: origin.name,
      size,
      sha256: await sha256File(data),
      senderTime: origin.senderTime,
      chunkBytes: this.chunkBytes,
      chunks: Math.max(1, Math.ceil(size / this.chunkBytes)),
    };
    writeAtomic(join(tmp, 'manifest.json'), JSON.stringify(manifest));
    fsyncPath(tmp);
    renameSync(tmp, join(this.dir, String(origin.id)));
    fsyncPath(this.dir);
    return manifest;
  }

  /** After a crash: finishes acceptances whose data is complete, drops the others. */
  async recover(): Promise<void> {
    for (const e of readdirSync(this.dir)) {
      if (!e.startsWith('.tmp-')) continue;
      const tmp = join(this.dir, e);
      if (existsSync(join(tmp, 'origin.json')) && existsSync(join(tmp, 'data'))) {
        try {
          await this.finishAccept(tmp);
          continue;
        } catch {
          // fall through: not recoverable
        }
      }
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  /** Spooled files, oldest first. */
  list(): SpooledFile[] {
    const out: SpooledFile[] = [];
    for (const e of readdirSync(this.dir)) {
      if (e.startsWith('.')) continue;
      const dir = join(this.dir, e);
      try {
        const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
        let progress: Progress = { roundsDone: 0, nextChunk: 0, startedAt: null };
        try {
          progress = JSON.parse(readFileSync(join(dir, 'progress.json'), 'utf8')) as Progress;
        } catch {
          // not started
        }
        out.push({ manifest, dir, data: join(dir, 'data'), progress });
      } catch {
        // a directory without a manifest is not an accepted file
      }
    }
    return out.sort((a, b) => a.manifest.senderTime.localeCompare(b.manifest.senderTime));
  }

  saveProgress(file: SpooledFile, sync: boolean): void {
    writeAtomic(join(file.dir, 'progress.json'), JSON.stringify(file.progress), sync);
  }

  remove(file: SpooledFile): void {
    rmSync(file.dir, { recursive: true, force: true });
  }
}
