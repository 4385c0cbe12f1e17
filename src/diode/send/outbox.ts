/**
 * The watched outbox: files dropped into a directory are taken into the spool (spool.ts) and
 * sent. A file is taken once it has stopped changing (same size and mtime for `settleMs`);
 * names starting with a dot are ignored, so a writer can write `.name` and rename it to
 * `name` when done. Taking a file moves it out of the outbox (a rename on the same
 * filesystem): once it is gone from the outbox, it is safely in the spool. A file refused
 * (disk full) stays where it is and is tried again.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { diodeLog as log } from '../../shared/log.js';
import type { AuditLog } from '../audit.js';
import { SpoolFullError } from '../disk.js';
import type { Manifest } from '../protocol/file-frames.js';
import type { FileSpool } from './spool.js';

export class Outbox {
  private readonly seen = new Map<string, { size: number; mtimeMs: number; since: number }>();
  private readonly refused = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    readonly dir: string,
    private readonly spool: FileSpool,
    private readonly audit: AuditLog,
    private readonly onAccepted: (m: Manifest) => void,
    private readonly settleMs = 1000,
  ) {}

  start(everyMs = 250): void {
    this.timer = setInterval(() => void this.scan(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async scan(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = Date.now();
      let names: string[];
      try {
        names = readdirSync(this.dir);
      } catch {
        return;
      }
      for (const name of names) {
        if (name.startsWith('.')) continue;
        const path = join(this.dir, name);
        const st = statSync(path, { throwIfNoEntry: false });
        if (!st?.isFile()) continue;
        const prev = this.seen.get(name);
        if (!prev || prev.size !== st.size || prev.mtimeMs !== st.mtimeMs) {
          this.seen.set(name, { size: st.size, mtimeMs: st.mtimeMs, since: now });
          continue;
        }
        if (now - prev.since < this.settleMs) continue;
        await this.take(path, name, `${name}:${st.size}:${st.mtimeMs}`);
      }
    } finally {
      this.busy = false;
    }
  }

  private async take(path: string, name: string, key: string): Promise<void> {
    try {
      const m = await this.spool.accept(path, { move: true });
      this.seen.delete(name);
      this.refused.delete(key);
      this.audit.write('file-accepted', { ...m, from: 'outbox' });
      log.info({ id: m.id, name: m.name, size: m.size }, 'file taken from the outbox');
      this.onAccepted(m);
    } catch (err) {
      if (this.refused.has(key)) return;
      this.refused.add(key);
      const reason = err instanceof SpoolFullError ? err.message : `cannot spool: ${(err as Error).message}`;
      this.audit.write('file-refused', { name, from: 'outbox', error: reason });
      log.error({ name, err: reason }, 'outbox file refused; it stays in the outbox');
    }
  }
}
