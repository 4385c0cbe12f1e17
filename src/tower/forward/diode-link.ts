/**
 * The one-way link's health as its sender knows it: the tower reads the diode sender's
 * Prometheus metrics (`metrics.listen` in its send.yaml) every few seconds — heartbeats
 * sent, datagrams handed to the link, UDP forwarded or dropped for want of room. A diode's
 * sender learns nothing from the other side, so what it sent is the whole story here.
 */
import { log } from '../../shared/log.js';
import type { DiodeLinkState, DiodeSenderCounters, ForwardView } from '../api/forward-types.js';

/** `name{labels} value` lines of the diode sender's metrics, by name and label set. */
export function parseDiodeMetrics(text: string): DiodeSenderCounters {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^tacmesh_diode_(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const outcome = /outcome="([^"]+)"/.exec(m[2] ?? '')?.[1];
    values.set(outcome ? `${m[1]}:${outcome}` : (m[1] ?? ''), Number(m[3]));
  }
  const v = (k: string) => values.get(k) ?? 0;
  if (!values.has('heartbeats_total'))
    throw new Error('no tacmesh_diode_heartbeats_total: not the metrics of a tacmesh diode sender');
  return {
    rateMbit: v('link_rate_mbit'),
    heartbeats: v('heartbeats_total'),
    datagrams: v('datagrams_total'),
    frames: v('frames_total'),
    repairs: v('repairs_total'),
    copies: v('copies_total'),
    fecBlocks: v('fec_blocks_total'),
    udpForwarded: v('udp_datagrams_total:forwarded'),
    udpDropped: v('udp_datagrams_total:dropped_buffer_full') + v('udp_datagrams_total:dropped_too_long'),
    sendErrors: v('send_errors_total'),
    unexpectedInbound: v('unexpected_inbound_total'),
  };
}

type View = NonNullable<ForwardView['diode']>;

/** The state from two readings `seconds` apart (the earlier one may be missing). */
export function linkState(
  now: DiodeSenderCounters,
  before: DiodeSenderCounters | null,
  seconds: number,
): { state: DiodeLinkState; why: string; perSecond: View['perSecond'] } {
  if (!before || seconds <= 0) return { state: 'starting', why: 'first reading', perSecond: null };
  const rate = (k: keyof DiodeSenderCounters) => Math.max(0, now[k] - before[k]) / seconds;
  const perSecond = {
    datagrams: rate('datagrams'),
    heartbeats: rate('heartbeats'),
    udpForwarded: rate('udpForwarded'),
    udpDropped: rate('udpDropped'),
  };
  if (perSecond.heartbeats === 0)
    return { state: 'stalled', why: 'the sender sent no heartbeat since the last reading', perSecond };
  if (perSecond.udpDropped > 0 || now.sendErrors > before.sendErrors)
    return {
      state: 'dropping',
      why: 'the sender dropped records: more than the link carries, or send errors',
      perSecond,
    };
  return { state: 'sending', why: 'heartbeats and records leave as they should', perSecond };
}

export class DiodeLinkWatch {
  private timer: NodeJS.Timeout | undefined;
  private last: { at: number; counters: DiodeSenderCounters } | null = null;
  private current: View;
  private failing = false;

  constructor(
    readonly url: string,
    private readonly everyMs = 2000,
  ) {
    this.current = {
      metrics: url,
      state: 'starting',
      why: 'not read yet',
      lastScrapeMs: null,
      sender: null,
      perSecond: null,
    };
  }

  start(): void {
    void this.read();
    this.timer = setInterval(() => void this.read(), this.everyMs);
    this.timer.unref();
  }

  view(): View {
    return this.current;
  }

  private async read(): Promise<void> {
    try {
      const res = await fetch(this.url, { signal: AbortSignal.timeout(Math.min(5000, this.everyMs)) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const counters = parseDiodeMetrics(await res.text());
      const at = Date.now();
      const s = linkState(counters, this.last?.counters ?? null, this.last ? (at - this.last.at) / 1000 : 0);
      this.last = { at, counters };
      this.current = { metrics: this.url, ...s, lastScrapeMs: at, sender: counters };
      this.failing = false;
    } catch (err) {
      const why = `the diode sender's metrics do not answer: ${(err as Error).message}`;
      if (!this.failing) log.warn({ url: this.url, err: (err as Error).message }, 'diode sender unreachable');
      this.failing = true;
      this.current = { ...this.current, state: 'unreachable', why };
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
