import type { Heartbeat, SenderCounters } from '../protocol/heartbeat.js';

export interface LinkHealth {
  alive: boolean;
  heartbeats: number;
  lastHeartbeatAgoMs: number | null;
  /** Fraction of datagrams (originals and copies) the link lost, from the sender's count. */
  datagramLoss: number | null;
  /** What that fraction is of: datagrams sent and received between the first heartbeat and the last. */
  datagramsSent: number;
  datagramsReceived: number;
  senderUptimeS: number | null;
  /** The sender's counters from its last heartbeat. */
  sender: SenderCounters | null;
}

/** The receiver's view of the link: alive while heartbeats keep coming; loss from their counts. */
export class LinkMonitor {
  /** The last heartbeat heard, and when. */
  private last: { at: number; heartbeat: Heartbeat } | undefined;
  /** The first and the last heartbeat counted in arrival order: the loss is between them. */
  private first: { heartbeat: Heartbeat; received: number } | undefined;
  private counted: { heartbeat: Heartbeat; received: number } | undefined;
  private count = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /**
   * `received`: datagrams of this sender the collector has counted so far, this one included;
   * undefined for a heartbeat FEC rebuilt (it came later than its place: the datagrams counted
   * by then include some the sender sent after it).
   */
  heard(heartbeat: Heartbeat, received?: number): void {
    this.count++;
    this.last = { at: this.now(), heartbeat };
    if (received === undefined) return;
    const entry = { heartbeat, received };
    if (!this.first || heartbeat.datagramsSent < (this.counted?.heartbeat.datagramsSent ?? 0))
      this.first = entry;
    this.counted = entry;
  }

  alive(): boolean {
    return this.last !== undefined && this.now() - this.last.at < this.timeoutMs;
  }

  /** Ms since the last heartbeat, or undefined if none was ever heard. */
  silenceMs(): number | undefined {
    return this.last ? this.now() - this.last.at : undefined;
  }

  health(): LinkHealth {
    const { first, counted: last } = this;
    const sent = first && last ? last.heartbeat.datagramsSent - first.heartbeat.datagramsSent : 0;
    const got = first && last ? last.received - first.received : 0;
    return {
      alive: this.alive(),
      heartbeats: this.count,
      lastHeartbeatAgoMs: this.last ? this.now() - this.last.at : null,
      datagramLoss: sent > 0 ? Math.max(0, 1 - got / sent) : null,
      datagramsSent: sent,
      datagramsReceived: got,
      senderUptimeS: this.last?.heartbeat.uptimeS ?? null,
      sender: this.last?.heartbeat.counters ?? null,
    };
  }
}
