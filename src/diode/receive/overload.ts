/**
 * Whether the receiver keeps up with what reaches it, from what it loses itself — never to be
 * confused with what the link loses: datagrams the kernel dropped on the link socket (its
 * buffer full: the reader thread was not scheduled in time, or the buffer is small for the
 * rate), datagrams the reader dropped because the frame path was too far behind (frames not
 * processed in time), and, in the same moments, FEC blocks lost beyond repair.
 *
 * Sampled once a second. A second with any local drop is an overloaded one; the rate it
 * reports is what was offered: what arrived plus what was dropped, on the wire (headers
 * counted as the sender's pacer counts them). The first overloaded second is logged at once
 * ("receiver overloaded at N Mbit/s: ..."), a continuing overload every 10 s, the recovery
 * once; status and metrics carry the totals, the last overload and whether it is now.
 */
import { WIRE_OVERHEAD_BYTES } from '../protocol/frame.js';

export interface OverloadSample {
  /** ms, any monotonic clock. */
  at: number;
  datagrams: number;
  bytes: number;
  kernelDrops: number;
  queueDrops: number;
  fecFailed: number;
  /** The longest the main thread was held (event loop delay) since the last sample, ms. */
  mainPauseMs: number;
}

export interface OverloadStatus {
  /** The last second had local drops. */
  now: boolean;
  kernelDrops: number;
  queueDrops: number;
  /** FEC blocks that failed during overloaded seconds. */
  fecFailedWhileOverloaded: number;
  /** Overloads (runs of overloaded seconds) since the start. */
  episodes: number;
  /** The offered rate of the last overloaded second, Mbit/s on the wire; null if never. */
  lastMbit: number | null;
  lastAt: string | null;
  /** The log line of the last overload. */
  message: string | null;
  /** The offered rate of the last second. */
  rateMbit: number;
  /** The longest main-thread pause of the last second, ms. */
  mainPauseMs: number;
}

const REPEAT_MS = 10_000;

export class OverloadMonitor {
  private last: OverloadSample | undefined;
  private since: number | undefined;
  private lostInEpisode = 0;
  private lastLogged = 0;
  private readonly state: OverloadStatus = {
    now: false,
    kernelDrops: 0,
    queueDrops: 0,
    fecFailedWhileOverloaded: 0,
    episodes: 0,
    lastMbit: null,
    lastAt: null,
    message: null,
    rateMbit: 0,
    mainPauseMs: 0,
  };

  constructor(
    private readonly report: {
      overloaded(message: string, details: Record<string, number>): void;
      recovered(message: string, details: Record<string, number>): void;
    },
  ) {}

  sample(s: OverloadSample): void {
    const p = this.last;
    this.last = s;
    this.state.kernelDrops = s.kernelDrops;
    this.state.queueDrops = s.queueDrops;
    if (!p) return;
    const seconds = Math.max(0.001, (s.at - p.at) / 1000);
    const datagrams = s.datagrams - p.datagrams;
    const kernel = s.kernelDrops - p.kernelDrops;
    const queue = s.queueDrops - p.queueDrops;
    const failed = s.fecFailed - p.fecFailed;
    const dropped = kernel + queue;
    const mean = datagrams > 0 ? (s.bytes - p.bytes) / datagrams : 0;
    const offered = (s.bytes - p.bytes + dropped * mean + (datagrams + dropped) * WIRE_OVERHEAD_BYTES) * 8;
    const mbit = Math.round(offered / seconds / 1e5) / 10;
    this.state.rateMbit = mbit;
    this.state.mainPauseMs = Math.round(s.mainPauseMs);
    if (dropped === 0) {
      if (this.state.now && this.since !== undefined) {
        const details = { seconds: Math.round((p.at - this.since) / 1000), dropped: this.lostInEpisode };
        this.report.recovered(
          `receiver keeps up again after ${details.seconds} s overloaded (${this.lostInEpisode} datagrams dropped by the receiver)`,
          details,
        );
      }
      this.state.now = false;
      return;
    }
    this.state.fecFailedWhileOverloaded += failed;
    const first = !this.state.now;
    if (first) {
      this.state.episodes++;
      this.since = p.at;
      this.lostInEpisode = 0;
    }
    this.lostInEpisode += dropped;
    this.state.now = true;
    this.state.lastMbit = mbit;
    this.state.lastAt = new Date().toISOString();
    const why = [
      kernel ? `${kernel} datagrams dropped by the kernel (socket buffer full)` : '',
      queue
        ? `${queue} not processed in time (the frame path ${Math.round(s.mainPauseMs)} ms behind at worst)`
        : '',
      failed ? `${failed} FEC blocks lost beyond repair` : '',
    ]
      .filter(Boolean)
      .join(', ');
    this.state.message = `receiver overloaded at ${mbit} Mbit/s: ${why} in the last ${seconds.toFixed(1)} s`;
    if (first || s.at - this.lastLogged >= REPEAT_MS) {
      this.lastLogged = s.at;
      this.report.overloaded(this.state.message, {
        mbit,
        kernelDrops: kernel,
        queueDrops: queue,
        fecFailed: failed,
      });
    }
  }

  status(): OverloadStatus {
    return { ...this.state };
  }
}
