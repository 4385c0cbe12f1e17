/**
 * Counters on disk: a JSON file rewritten every `everyMs` (a temporary file renamed over it,
 * so a reader never sees half of one), so an operator or a test can watch a running sender or
 * receiver without a return path or a port. Written in the background and not fsynced: a
 * snapshot that a power cut takes back a few seconds is harmless, while an fsync — even the
 * open and the rename, on a disk busy with a file being received — made the frame path's
 * thread wait for the journal (0.1-0.2 s a second at 1 Gbit/s). The last write, at close, is
 * in line, and made again once a background write still under way has landed, so an older
 * snapshot never ends up over it.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { diodeLog as log } from '../shared/log.js';

export class StatsFile {
  private readonly timer: NodeJS.Timeout | undefined;
  /** The background write under way, if any (a tick during it is skipped). */
  private inFlight: Promise<void> | undefined;
  private failed = false;

  constructor(
    private readonly file: string | undefined,
    everyMs: number,
    private readonly snapshot: () => unknown,
  ) {
    if (file) {
      this.timer = setInterval(() => this.writeLater(), everyMs);
      this.timer.unref();
    }
  }

  private text(): string {
    return `${JSON.stringify(this.snapshot(), null, 2)}\n`;
  }

  private writeLater(): void {
    if (!this.file || this.inFlight) return;
    const file = this.file;
    const tmp = `${file}.tmp`;
    this.inFlight = writeFile(tmp, this.text(), { mode: 0o644 })
      .then(() => rename(tmp, file))
      .catch((err) => {
        // Logged once: the counters go on being kept, and the file is tried again each time.
        if (!this.failed) log.warn({ err, file }, 'cannot write the stats file');
        this.failed = true;
      })
      .finally(() => {
        this.inFlight = undefined;
      });
  }

  /** Writes the counters now, in line. */
  write(): void {
    if (!this.file) return;
    const tmp = `${this.file}.final.tmp`;
    writeFileSync(tmp, this.text(), { mode: 0o644 });
    renameSync(tmp, this.file);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.write();
    this.inFlight
      ?.then(() => this.write())
      .catch((err) => log.warn({ err, file: this.file }, 'cannot write the stats file'));
  }
}
