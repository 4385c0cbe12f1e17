/**
 * The sender's TCP spool. What a client sends is written, as it arrives, to
 *
 *   <dir>/<origin>/data           the bytes, in order
 *   <dir>/<origin>/session.json   once the client closed its side cleanly: the data fsynced,
 *                                 then this written (fsync, rename) and the directory fsynced
 *   <dir>/<origin>/progress.json  rounds sent (the carousel; a restart goes on from here)
 *
 * A session is accepted — and only then does its client get the FIN that acknowledges it —
 * once session.json is on disk. A directory without it after a crash is a session never
 * accepted (its client saw a reset, SO_LINGER 0): removed at the start. The origin id (the
 * epoch in hex and the session id it was accepted under) names a session across restarts and
 * rounds, so that the receiver can tell rounds of one session apart from new sessions.
 *
 * A full disk fails `append` or `accept` with SpoolFullError; the session is refused and its
 * directory removed, and nothing else in the spool is touched.
 */
import { createHash, type Hash } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fsyncPath, writeFileAtomic } from '../../shared/atomic-file.js';
import { duBytes, freshDir, spoolWrite } from '../disk.js';
import type { OpenPayload } from '../protocol/frame.js';
import type { RoundProgress } from './carousel.js';

export interface StoredSessionMeta extends OpenPayload {
  origin: string;
  bytes: number;
  sha256: string;
  /** When the session opened (ms since 1970): a carousel by duration counts from here. */
  startedAt: number;
}

export interface AcceptedSession {
  meta: StoredSessionMeta;
  dir: string;
  data: string;
  progress: RoundProgress;
}

const full = (origin: string) => `TCP spool is full: session ${origin} refused`;

export class SessionStore {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Starts storing a session; throws SpoolFullError if not even its directory fits. */
  open(origin: string, open: OpenPayload, startedAt: number): SessionWriter {
    const dir = join(this.dir, origin);
    return freshDir(dir, full(origin), () => new SessionWriter(dir, { ...open, origin, startedAt }));
  }

  /** The accepted sessions, oldest first; what was never accepted is removed. */
  accepted(): AcceptedSession[] {
    const out: AcceptedSession[] = [];
    for (const origin of readdirSync(this.dir)) {
      const dir = join(this.dir, origin);
      let meta: StoredSessionMeta;
      try {
        meta = JSON.parse(readFileSync(join(dir, 'session.json'), 'utf8')) as StoredSessionMeta;
      } catch {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      let roundsDone = 0;
      try {
        roundsDone = (JSON.parse(readFileSync(join(dir, 'progress.json'), 'utf8')) as RoundProgress)
          .roundsDone;
      } catch {
        // no round confirmed sent yet
      }
      out.push({ meta, dir, data: join(dir, 'data'), progress: { roundsDone, startedAt: meta.startedAt } });
    }
    return out.sort((a, b) => a.meta.startedAt - b.meta.startedAt);
  }

  /** Keeps the rounds sent (no fsync: a round lost to a power cut is only sent again). */
  saveProgress(s: AcceptedSession): void {
    writeFileAtomic(join(s.dir, 'progress.json'), JSON.stringify({ roundsDone: s.progress.roundsDone }));
  }

  remove(s: AcceptedSession): void {
    rmSync(s.dir, { recursive: true, force: true });
  }

  bytes(): number {
    return duBytes(this.dir);
  }
}

/** One session being stored: appended to as the client sends, then accepted or discarded. */
export class SessionWriter {
  private fd: number | undefined;
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;

  constructor(
    readonly dir: string,
    private readonly meta: Omit<StoredSessionMeta, 'bytes' | 'sha256'>,
  ) {
    this.fd = spoolWrite(full(meta.origin), () => openSync(join(dir, 'data'), 'wx', 0o600));
  }

  append(chunk: Buffer): void {
    const fd = this.fd;
    if (fd === undefined) return;
    spoolWrite(full(this.meta.origin), () => {
      let done = 0;
      while (done < chunk.length) done += writeSync(fd, chunk, done);
    });
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }

  /** Makes the session durable: data fsynced, session.json written. Throws SpoolFullError on a full disk. */
  accept(): AcceptedSession {
    const fd = this.fd;
    if (fd === undefined) throw new Error(`session ${this.meta.origin} was discarded`);
    const meta: StoredSessionMeta = { ...this.meta, bytes: this.bytes, sha256: this.hash.digest('hex') };
    spoolWrite(full(meta.origin), () => {
      fsyncSync(fd);
      closeSync(fd);
      this.fd = undefined;
      writeFileAtomic(join(this.dir, 'session.json'), JSON.stringify(meta));
      fsyncPath(this.dir);
      fsyncPath(dirname(this.dir));
    });
    return {
      meta,
      dir: this.dir,
      data: join(this.dir, 'data'),
      progress: { roundsDone: 0, startedAt: meta.startedAt },
    };
  }

  /** Closes and deletes what was stored (the client aborted, or the disk is full). */
  discard(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
