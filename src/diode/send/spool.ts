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
 * been sent. A moved file (the outbox) is fsynced in the spool before it counts as accepted:
 * its writer may never have synced it.
 *
 * A spooled file that cannot be sent — its manifest unreadable, its data short or unreadable
 * — goes to `<dir>/quarantine/<id>/` with an error.json (quarantine()), so the send loop goes
 * on with the others, then and after a restart.
 *
 * Transfer ids are random 32-bit numbers, never one the spool holds now; the receiver tells
 * files apart by (id, size, SHA-256, sender time), so a reused id is not a lost file.
 */
import { randomInt } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fsyncPath, writeFileAtomic, writeFileAtomicAsync } from '../../shared/atomic-file.js';
import { diodeLog as log } from '../../shared/log.js';
import { isDiskFull, SpoolFullError, sha256File } from '../disk.js';
import type { CalibrationStep, Manifest } from '../protocol/file-frames.js';

export interface Progress {
  /** Rounds completely sent. */
  roundsDone: number;
  /** Next chunk of the round in progress. */
  nextChunk: number;
  /** When the first round started (ms since the epoch), for carousels by duration. */
  startedAt: number | null;
}

export interface SpooledFile {
  manifest: Manifest;
  dir: string;
  data: string;
  progress: Progress;
}

export class FileSpool {
  readonly dir: string;
  readonly quarantineDir: string;
  /** Spooled directories that could not be read (list() quarantines them). */
  quarantined = 0;
  private readonly skipped = new Set<string>();
  /** Background saves of progress under way, by file directory. */
  private readonly saving = new Map<string, Promise<void>>();
  private readonly onQuarantine: ((what: { id: string; error: string; path: string }) => void) | undefined;

  constructor(
    root: string,
    private readonly chunkBytes: number,
    onQuarantine?: (what: { id: string; error: string; path: string }) => void,
  ) {
    this.dir = join(root, 'files');
    this.quarantineDir = join(root, 'quarantine');
    this.onQuarantine = onQuarantine;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /** A random id that no file in the spool has now. */
  private freshId(): number {
    for (;;) {
      const id = randomInt(1, 2 ** 32 - 1);
      if (!existsSync(join(this.dir, String(id))) && !existsSync(join(this.dir, `.tmp-${id}`))) return id;
    }
  }

  /**
   * Moves a spooled file (its directory, by name under files/) out of the send loop's way,
   * with the reason in error.json. Returns where it went.
   */
  quarantine(name: string, error: string): string {
    mkdirSync(this.quarantineDir, { recursive: true, mode: 0o700 });
    let dest = join(this.quarantineDir, name);
    for (let n = 1; existsSync(dest); n++) dest = join(this.quarantineDir, `${name}-${n}`);
    renameSync(join(this.dir, name), dest);
    fsyncPath(this.dir);
    writeFileAtomic(
      join(dest, 'error.json'),
      `${JSON.stringify({ error, at: new Date().toISOString() }, null, 2)}\n`,
    );
    this.quarantined++;
    this.onQuarantine?.({ id: name, error, path: dest });
    return dest;
  }

  /**
   * Accepts a file: copies it (or, with `move`, renames it: the outbox) into the spool with
   * its manifest. Returns once it is durable; throws SpoolFullError when the disk is full.
   */
  async accept(
    path: string,
    options: { move?: boolean; name?: string; calibration?: CalibrationStep } = {},
  ): Promise<Manifest> {
    const id = this.freshId();
    const tmp = join(this.dir, `.tmp-${id}`);
    const name = options.name ?? basename(path);
    try {
      mkdirSync(tmp, { mode: 0o700 });
      writeFileAtomic(
        join(tmp, 'origin.json'),
        JSON.stringify({
          id,
          name,
          senderTime: new Date().toISOString(),
          ...(options.calibration ? { calibration: options.calibration } : {}),
        }),
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
      if (!moved) copyFileSync(path, data);
      // Moved or copied: its bytes reach the disk before the file counts as accepted.
      fsyncPath(data);
      const manifest = await this.finishAccept(tmp);
      if (options.move && !moved) unlinkSync(path);
      // The source's directory: its file is gone for good only now.
      if (options.move) fsyncPath(dirname(path));
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
      calibration?: CalibrationStep;
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
      ...(origin.calibration ? { calibration: origin.calibration } : {}),
    };
    writeFileAtomic(join(tmp, 'manifest.json'), JSON.stringify(manifest));
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

  /**
   * Spooled files, oldest first. One whose manifest cannot be read, or whose data is not its
   * manifest's size, is quarantined. An unreadable progress.json (a power cut) starts the
   * file's rounds again from the first: the receiver drops what it has already.
   */
  list(): SpooledFile[] {
    const out: SpooledFile[] = [];
    for (const e of readdirSync(this.dir)) {
      if (e.startsWith('.') || this.skipped.has(e)) continue;
      const dir = join(this.dir, e);
      const data = join(dir, 'data');
      let manifest: Manifest;
      try {
        manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
        const size = statSync(data).size;
        if (size !== manifest.size)
          throw new Error(`data is ${size} bytes, the manifest says ${manifest.size}`);
      } catch (err) {
        this.tryQuarantine(e, `cannot be sent: ${(err as Error).message}`);
        continue;
      }
      let progress: Progress = { roundsDone: 0, nextChunk: 0, startedAt: null };
      try {
        const p = JSON.parse(readFileSync(join(dir, 'progress.json'), 'utf8')) as Progress;
        if (Number.isSafeInteger(p.roundsDone) && Number.isSafeInteger(p.nextChunk)) progress = p;
      } catch {
        // not started, or lost in a power cut: from the start
      }
      out.push({ manifest, dir, data, progress });
    }
    return out.sort((a, b) => a.manifest.senderTime.localeCompare(b.manifest.senderTime));
  }

  /** quarantine(), logged instead of thrown when even that fails (the loop must go on). */
  tryQuarantine(name: string, error: string): void {
    try {
      this.quarantine(name, error);
    } catch (err) {
      // Left where it is, skipped by this run (and tried again after a restart).
      this.quarantined++;
      this.skipped.add(name);
      this.onQuarantine?.({
        id: name,
        error: `${error}; not quarantined: ${(err as Error).message}`,
        path: '',
      });
    }
  }

  saveProgress(file: SpooledFile): void {
    writeFileAtomic(join(file.dir, 'progress.json'), JSON.stringify(file.progress));
  }

  /**
   * Saves where sending is, in the background (the send loop does not wait on the disk), after
   * any save of this file still under way; a failure is logged (the last save stands).
   */
  saveProgressLater(file: SpooledFile): void {
    const text = JSON.stringify(file.progress);
    const path = join(file.dir, 'progress.json');
    const next = (this.saving.get(file.dir) ?? Promise.resolve())
      .then(() => writeFileAtomicAsync(path, text))
      .catch((err: Error) => log.warn({ file: path, err }, 'cannot save the progress of a file'))
      .finally(() => {
        if (this.saving.get(file.dir) === next) this.saving.delete(file.dir);
      });
    this.saving.set(file.dir, next);
  }

  /** Resolves once no background save of `file`'s progress is under way. */
  progressSaved(file: SpooledFile): Promise<void> {
    return this.saving.get(file.dir) ?? Promise.resolve();
  }

  remove(file: SpooledFile): void {
    rmSync(file.dir, { recursive: true, force: true });
  }
}
