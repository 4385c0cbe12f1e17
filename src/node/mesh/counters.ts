/**
 * Interface byte counters of this process's network namespace, from /proc/net/dev (which,
 * unlike /sys/class/net, follows the namespace the process is in), turned into rates.
 */
import { readFileSync } from 'node:fs';

export function readCounters(
  text = readFileSync('/proc/net/dev', 'utf8'),
): Map<string, { rx: number; tx: number }> {
  const out = new Map<string, { rx: number; tx: number }>();
  for (const line of text.split('\n').slice(2)) {
    const [name, rest] = line.split(':');
    if (!name || !rest) continue;
    const f = rest.trim().split(/\s+/).map(Number);
    out.set(name.trim(), { rx: f[0] ?? 0, tx: f[8] ?? 0 });
  }
  return out;
}

/** Bits per second each way since the previous call, per interface. */
export class RateMeter {
  private last = new Map<string, { rx: number; tx: number }>();
  private lastMs = 0;

  sample(nowMs = Date.now(), counters = readCounters()): Map<string, { rxBps: number; txBps: number }> {
    const seconds = this.lastMs ? (nowMs - this.lastMs) / 1000 : 0;
    const out = new Map<string, { rxBps: number; txBps: number }>();
    for (const [name, c] of counters) {
      const before = this.last.get(name);
      // A counter that went back (the interface was re-created) starts over.
      const rate = (now: number, was?: number) =>
        seconds > 0 && was !== undefined && now >= was ? ((now - was) * 8) / seconds : 0;
      out.set(name, { rxBps: rate(c.rx, before?.rx), txBps: rate(c.tx, before?.tx) });
    }
    this.last = counters;
    this.lastMs = nowMs;
    return out;
  }
}
