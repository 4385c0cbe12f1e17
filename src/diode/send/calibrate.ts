/**
 * `tacmesh diode calibrate`: how fast this sender and its receiver go together, measured on
 * the link itself. Run in place of the sender (both pace the same link): for each step, a file
 * of random bytes — `seconds` at the step's rate — goes through the sender's whole file path
 * (spool, frames, tags and FEC as configured) paced at that share of link.rateMbit, marked as
 * step i of this run. The receiver measures each step and keeps the result
 * (receive/calibration.ts: `<stateDir>/calibration.json`, the highest rate sustained); a copy
 * of it named in the sender's `link.calibration` makes the sender warn at start when its rate
 * is above that. This side reports the rate it could send each step at: a sender that cannot
 * pace as fast as asked is CPU-bound.
 *
 * Spooled files of the real sender are not touched: the run has a spool of its own, whose
 * epoch follows the real store's (and is written back to it, so the next start is newer).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import type { SendConfig } from '../config.js';
import { privateDir } from '../private-dir.js';
import { Sender } from './sender.js';

export interface CalibrateOptions {
  /** Seconds of each step's rate per step file. */
  seconds: number;
  /** Steps as percentages of link.rateMbit. */
  steps: number[];
  /** Told of each step as it ends. */
  onStep?(s: SentStep): void;
}

export interface SentStep {
  step: number;
  rateMbit: number;
  bytes: number;
  /** Goodput the sender reached: the file's bytes over the time it took to leave. */
  sentMbit: number;
}

const MB = 1 << 20;

export async function calibrate(config: SendConfig, o: CalibrateOptions): Promise<SentStep[]> {
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-calibrate-'));
  const realEpoch = join(config.store.dir, 'epoch');
  const store = join(dir, 'store');
  mkdirSync(store, { mode: 0o700 });
  if (existsSync(realEpoch)) writeFileAtomic(join(store, 'epoch'), readFileSync(realEpoch));
  const sender = new Sender({
    ...config,
    tcp: [],
    udp: [],
    store: { enabled: true, dir: store },
    files: { ...config.files, outbox: undefined, rounds: 1, durationS: undefined },
    metrics: {},
  });
  const run = randomUUID().replace(/-/g, '');
  const sent: SentStep[] = [];
  try {
    await sender.start();
    for (const [i, pct] of o.steps.entries()) {
      const rateMbit = Math.round(config.link.rateMbit * pct) / 100;
      const bytes = Math.max(1, Math.round(((rateMbit * 1e6) / 8) * o.seconds));
      const file = join(dir, `step-${i}.bin`);
      writeRandom(file, bytes);
      sender.setRate(rateMbit);
      await sender.offerFile(file, { run, step: i, steps: o.steps.length, rateMbit });
      const t0 = performance.now();
      while (sender.stats().files.sent < i + 1) await new Promise((r) => setTimeout(r, 20));
      const step = {
        step: i,
        rateMbit,
        bytes,
        sentMbit: Math.round((bytes * 8) / ((performance.now() - t0) / 1000) / 1e5) / 10,
      };
      rmSync(file, { force: true });
      sent.push(step);
      o.onStep?.(step);
    }
  } finally {
    await sender.stop();
    // The real sender's next epoch must be newer than the run's.
    privateDir(config.store.dir, 'store.dir');
    writeFileAtomic(realEpoch, readFileSync(join(store, 'epoch')));
    rmSync(dir, { recursive: true, force: true });
  }
  return sent;
}

function writeRandom(file: string, bytes: number): void {
  const fd = openSync(file, 'w', 0o600);
  try {
    for (let done = 0; done < bytes; ) {
      const n = Math.min(MB, bytes - done);
      writeSync(fd, randomBytes(n));
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}
