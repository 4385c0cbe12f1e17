/**
 * Counters on disk: a JSON file rewritten every `everyMs` (a temporary file renamed over it,
 * so a reader never sees half of one), so an operator or a test can watch a running sender or
 * receiver without a return path or a port. Not fsynced: a snapshot that a power cut takes
 * back a few seconds is harmless, and an fsync every second on the frame path's thread waited
 * for the journal to flush the files being received (up to 0.2 s each at 1 Gbit/s).
 */
import { renameSync, writeFileSync } from 'node:fs';

export class StatsFile {
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly file: string | undefined,
    everyMs: number,
    private readonly snapshot: () => unknown,
  ) {
    if (file) {
      this.timer = setInterval(() => this.write(), everyMs);
      this.timer.unref();
    }
  }

  write(): void {
    if (!this.file) return;
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.snapshot(), null, 2)}\n`, { mode: 0o644 });
    renameSync(tmp, this.file);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.write();
  }
}
