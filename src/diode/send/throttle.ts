/**
 * Per-session throughput control (the paper's eq. 1-2). The administrator sets Th2 for a
 * session pattern; the TCP destination proxy enforces it by reading no faster than Th2, so
 * the socket's receive buffer fills, the advertised window shrinks and TCP itself slows the
 * client — the receive-window route of the paper, with no packet delayed in the kernel.
 *
 * The session's stats report what the paper's RTT route would need: a = window/Th2 − RTT,
 * the extra delay that brings throughput = window/RTT down to Th2.
 */

/** Eq. (1): the most a TCP window of `windowBytes` carries per second over `rttMs`, in bit/s. */
export function windowThroughput(windowBytes: number, rttMs: number): number {
  return (windowBytes * 8) / (rttMs / 1000);
}

/** Eq. (2): extra delay in ms that holds a window of `windowBytes` at `th2` bit/s; never negative. */
export function extraDelayMs(windowBytes: number, th2: number, rttMs: number): number {
  return Math.max(0, ((windowBytes * 8) / th2) * 1000 - rttMs);
}

/** The receive window that gives Th2 at the current RTT (the paper's alternative route). */
export function windowFor(th2: number, rttMs: number): number {
  return (th2 / 8) * (rttMs / 1000);
}

/** A token bucket over bytes read: how long to stop reading after each chunk. */
export class ReadThrottle {
  private tokens: number;
  private last: number;
  readonly burstBytes: number;

  constructor(
    readonly bitsPerSecond: number,
    burstBytes?: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    // 20 ms worth (at least 16 KiB): small against a measurement second, large against one read.
    this.burstBytes = burstBytes ?? Math.max(16 * 1024, bitsPerSecond / 8 / 50);
    this.tokens = this.burstBytes;
    this.last = this.now();
  }

  /** Accounts for `bytes` just read; returns the ms to wait before reading again (0: go on). */
  take(bytes: number): number {
    const now = this.now();
    const rate = this.bitsPerSecond / 8 / 1000; // bytes per ms
    this.tokens = Math.min(this.burstBytes, this.tokens + (now - this.last) * rate);
    this.last = now;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : -this.tokens / rate;
  }
}

export interface SessionKey {
  service: string;
  srcIp: string;
  srcPort: number;
  dstIp: string;
  dstPort: number;
}

export interface ThroughputRule {
  match: Partial<SessionKey>;
  /** Th2 in Mbit/s. */
  mbit: number;
}

/** Th2 for a session in bit/s: the first rule whose every given field matches, else undefined. */
export function th2For(rules: readonly ThroughputRule[], key: SessionKey): number | undefined {
  const rule = rules.find((r) =>
    (Object.keys(r.match) as (keyof SessionKey)[]).every((k) => r.match[k] === key[k]),
  );
  return rule ? rule.mbit * 1e6 : undefined;
}
