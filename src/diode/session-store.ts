/**
 * The sender's temporary store: what a TCP client sent is written to a file per session
 * before it goes to the aggregator, as the paper's TCP destination proxy stores what it
 * accepts. The file is removed once the session has been sent in full. (Issue 10 turns
 * this into a crash-safe spool that is replayed after a restart.)
 */
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export class SessionStore {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  open(epoch: number, session: number): StoredSession {
    return new StoredSession(join(this.dir, `${epoch.toString(16)}-${session}.data`));
  }
}

export class StoredSession {
  private fd: number | undefined;
  bytes = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'wx', 0o600);
  }

  append(chunk: Buffer): void {
    if (this.fd === undefined) return;
    let done = 0;
    while (done < chunk.length) done += writeSync(this.fd, chunk, done);
    this.bytes += chunk.length;
  }

  /** Closes and deletes the file (the session was sent, or abandoned). */
  remove(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    rmSync(this.path, { force: true });
  }
}
