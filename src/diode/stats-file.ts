/**
 * Counters on disk: a JSON file rewritten (atomically, by rename) every `everyMs`, so an
 * operator or a test can watch a running sender or receiver without a return path or a port.
 */
import { writeFileAtomic } from '../shared/atomic-file.js';

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
    writeFileAtomic(this.file, `${JSON.stringify(this.snapshot(), null, 2)}\n`, 0o644);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.write();
  }
}
