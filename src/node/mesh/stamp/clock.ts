/** Wall-clock time in Unix nanoseconds, to the microsecond (STAMP's timestamps are wall-clock). */
export function wallNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}
