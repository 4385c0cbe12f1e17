/**
 * Wall-clock time (STAMP's timestamps are wall-clock): CLOCK_REALTIME, the clock the kernel
 * stamps received datagrams with, so a send time read here and a receive time from the
 * kernel (socket-options.ts `receivedAtNs`) can be subtracted.
 */
import { libc } from '../../../shared/libc.js';

const CLOCK_REALTIME = 0;
const ts = Buffer.alloc(16);

/** The clock now as seconds and nanoseconds, in plain numbers (no BigInt work on the way to a send). */
export function readClock(): { sec: number; nsec: number } {
  if (libc.clockGettime(CLOCK_REALTIME, ts) !== 0) {
    const ms = Date.now();
    return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
  }
  return { sec: Number(ts.readBigInt64LE(0)), nsec: Number(ts.readBigInt64LE(8)) };
}

/** Unix nanoseconds now. */
export function wallNs(): bigint {
  const { sec, nsec } = readClock();
  return BigInt(sec) * 1_000_000_000n + BigInt(nsec);
}
