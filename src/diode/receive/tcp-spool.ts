/**
 * The receiver's TCP spool (`tcp.store`): each session's bytes, in order, on disk until the
 * destination has them all and has been given a clean end.
 *
 *   <dir>/<epoch hex>-<session>/open.json       the open frame's payload
 *   <dir>/<epoch hex>-<session>/data            the bytes in order
 *   <dir>/<epoch hex>-<session>/complete.json   once the close frame arrived: the data
 *                                               fdatasynced, then this (bytes, SHA-256)
 *
 * Delivery reads the data back at the destination's pace, so a slow destination holds disk,
 * not memory, and one that is down is tried again. A receiver killed and restarted delivers
 * every session held complete again from its start, as a new destination connection (the
 * one it had was reset: SO_LINGER 0). A session held incomplete cannot be completed — what
 * the dead process had received does not come again in that round — so it is removed; a
 * carousel's later round brings it whole. A full disk fails `append` or `complete` with
 * SpoolFullError: that session is aborted and removed, nothing else is touched.
 *
 * Sessions delivered are remembered by origin (session-origin.ts) in `DeliveredOrigins`,
 * so that later rounds of a session, and replays after a sender restart, are not delivered
 * twice — across restarts of the receiver, too.
 */
import { createHash, type Hash } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  fdatasyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { diodeLog as log } from '../../shared/log.js';
import type { RecvConfig } from '../config.js';
import { duBytes, freshDir, spoolWrite } from '../disk.js';
import type { OpenPayload } from '../protocol/frame.js';

interface Complete {
  bytes: number;
  sha256: string;
}

const full = (session: number) => `receiver TCP spool is full: session ${session} refused`;

/** Where the receiver's TCP spool is: `tcp.store.dir`, by default in the state directory. */
export function receiverSpoolDir(config: Pick<RecvConfig, 'stateDir' | 'tcp'>): string | undefined {
  const store = config.tcp.store;
  return store ? (store.dir ?? join(config.stateDir, 'tcp-spool')) : undefined;
}

export class ReceiverSpool {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Starts holding a session; throws SpoolFullError on a full disk. */
  create(epoch: number, session: number, open: OpenPayload): HeldSession {
    const dir = join(this.dir, `${epoch.toString(16)}-${session}`);
    return freshDir(dir, full(session), () => {
      spoolWrite(full(session), () => writeFileAtomic(join(dir, 'open.json'), JSON.stringify(open)));
      return new HeldSession(dir, epoch, session, open);
    });
  }

  /** After a restart: the sessions held complete, oldest first; incomplete ones are removed. */
  recover(): HeldSession[] {
    const out: HeldSession[] = [];
    for (const name of readdirSync(this.dir)) {
      const dir = join(this.dir, name);
      const m = /^([0-9a-f]{1,8})-(\d{1,10})$/.exec(name);
      try {
        if (!m) throw new Error('not a session');
        const open = JSON.parse(readFileSync(join(dir, 'open.json'), 'utf8')) as OpenPayload;
        const complete = JSON.parse(readFileSync(join(dir, 'complete.json'), 'utf8')) as Complete;
        out.push(new HeldSession(dir, Number.parseInt(m[1]!, 16), Number(m[2]), open, complete));
      } catch {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    return out.sort((a, b) => a.epoch - b.epoch || a.session - b.session);
  }

  bytes(): number {
    return duBytes(this.dir);
  }
}

export class HeldSession {
  private readonly fd: number;
  private readonly hash: Hash | undefined;
  bytes: number;
  complete: Complete | undefined;

  constructor(
    readonly dir: string,
    readonly epoch: number,
    readonly session: number,
    readonly open: OpenPayload,
    complete?: Complete,
  ) {
    this.complete = complete;
    this.bytes = complete?.bytes ?? 0;
    this.hash = complete ? undefined : createHash('sha256');
    this.fd = spoolWrite(full(session), () => openSync(join(dir, 'data'), complete ? 'r' : 'w+', 0o600));
  }

  append(chunk: Buffer): void {
    spoolWrite(full(this.session), () => {
      let done = 0;
      while (done < chunk.length)
        done += writeSync(this.fd, chunk, done, chunk.length - done, this.bytes + done);
    });
    this.hash?.update(chunk);
    this.bytes += chunk.length;
  }

  /** The close frame arrived: the data is made durable, then marked complete. */
  markComplete(): void {
    const complete = { bytes: this.bytes, sha256: this.hash?.digest('hex') ?? '' };
    spoolWrite(full(this.session), () => {
      fdatasyncSync(this.fd);
      writeFileAtomic(join(this.dir, 'complete.json'), JSON.stringify(complete));
    });
    this.complete = complete;
  }

  /** Up to `max` bytes from `offset` (what has been written so far). */
  read(offset: number, max: number): Buffer {
    const buf = Buffer.allocUnsafe(Math.min(max, this.bytes - offset));
    const n = readSync(this.fd, buf, 0, buf.length, offset);
    return buf.subarray(0, n);
  }

  /** Lets go of the file, keeping it on disk (shutdown: delivered after the restart). */
  release(): void {
    closeSync(this.fd);
  }

  remove(): void {
    this.release();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Origins of sessions delivered, kept `keepMs` in an append-only file (one `origin time`
 * line each), compacted at the start.
 */
export class DeliveredOrigins {
  private readonly delivered = new Map<string, number>();

  constructor(
    private readonly file: string,
    keepMs: number,
    now = Date.now(),
  ) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // none yet
    }
    for (const line of text.split('\n')) {
      const [origin, at] = line.split(' ');
      if (origin && Number(at) > now - keepMs) this.delivered.set(origin, Number(at));
    }
    writeFileAtomic(file, [...this.delivered].map(([o, at]) => `${o} ${at}\n`).join(''));
  }

  has(origin: string): boolean {
    return this.delivered.has(origin);
  }

  add(origin: string, now = Date.now()): void {
    this.delivered.set(origin, now);
    try {
      appendFileSync(this.file, `${origin} ${now}\n`, { mode: 0o600 });
    } catch (err) {
      // Remembered in memory still; only a restart could then deliver a later round again.
      log.error({ err, file: this.file }, 'cannot record a delivered session');
    }
  }
}
