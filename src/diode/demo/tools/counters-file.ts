import { writeFileAtomic } from '../../../shared/atomic-file.js';

/** Rewrites `counters()` as JSON into `file` every `ms` and once more on SIGTERM, then exits. */
export function writeCountersEvery(file: string, ms: number, counters: () => unknown): void {
  const write = () => writeFileAtomic(file, JSON.stringify(counters()), 0o644);
  write();
  setInterval(write, ms);
  process.on('SIGTERM', () => {
    write();
    process.exit(0);
  });
}
