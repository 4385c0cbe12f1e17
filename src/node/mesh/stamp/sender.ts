/**
 * STAMP session-sender (RFC 8762 §4.2) towards one neighbour: a numbered probe every
 * 1/ratePps seconds, and from the reflections the link's round-trip time, jitter and loss in
 * each direction over a sliding window. A stateful reflector numbers what it received, so a
 * reflection of probe s carrying reflector number r says s − r probes were lost on the way
 * out so far; the rest of the unanswered probes were lost on the way back.
 */
import type { Socket } from 'node:dgram';
import { receivedAtNs } from '../../../shared/socket-options.js';
import { wallNs } from './clock.js';
import { decodeReflector, ERROR_ESTIMATE_SYNCED, encodeSender, StampPacketError } from './packet.js';
import { sendTimed, timingSocket } from './socket.js';

export interface StampSenderOptions {
  peer: string;
  port: number;
  /** Probes per second (default 5). */
  ratePps?: number;
  /** A probe unanswered this long is lost; a link with no answer this long is down (default 1000). */
  timeoutMs?: number;
  /** The window the statistics cover (default 10 s). */
  windowMs?: number;
  /** The local address to send from (default: any). */
  bindAddress?: string;
}

/** What one window of probes says of the link. */
export interface ProbeStats {
  sent: number;
  answered: number;
  rttMs: { min: number; median: number; mean: number; p95: number } | null;
  /** Mean difference between consecutive round-trip times (RFC 3550's interarrival jitter, unsmoothed). */
  jitterMs: number | null;
  /** Of the probes sent in the window (answered or timed out) since the neighbour first answered, the share lost each way. */
  lossForwardPct: number;
  lossBackwardPct: number;
  /** No answer for timeoutMs while probing. */
  down: boolean;
  /** Wall time of the last answer (ms), 0 before the first. */
  lastAnswerMs: number;
  malformed: number;
}

interface Probe {
  seq: number;
  sentMs: number;
  rttMs?: number;
  /** Cumulative forward loss the reflector's number implies at this probe. */
  forwardLost?: number;
}

export class StampSender {
  private readonly socket: Socket;
  private readonly probes: Probe[] = [];
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private startedMs = 0;
  private lastAnswerMs = 0;
  /** The first probe the neighbour ever answered: those before it went to no reflector yet. */
  private firstAnsweredSeq = Number.POSITIVE_INFINITY;
  private malformed = 0;
  private readonly ratePps: number;
  private readonly timeoutMs: number;
  private readonly windowMs: number;

  private constructor(
    socket: Socket,
    private readonly options: StampSenderOptions,
  ) {
    this.socket = socket;
    this.ratePps = options.ratePps ?? 5;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.windowMs = options.windowMs ?? 10_000;
    socket.on('message', (msg) => this.answer(msg));
  }

  static async open(options: StampSenderOptions): Promise<StampSender> {
    return new StampSender(await timingSocket(0, options.bindAddress), options);
  }

  /** The socket, for options Node does not expose (the DSCP). */
  get udp(): Socket {
    return this.socket;
  }

  start(): void {
    if (this.timer) return;
    this.startedMs = Date.now();
    this.timer = setInterval(() => this.probe(), 1000 / this.ratePps);
    this.probe();
  }

  private probe(): void {
    const probe: Probe = { seq: this.seq++, sentMs: Date.now() };
    this.probes.push(probe);
    this.forget(probe.sentMs);
    // A send error (no route while the link is cut) is a lost probe, counted as such.
    const packet = encodeSender({ seq: probe.seq, txNs: 0n, errorEstimate: ERROR_ESTIMATE_SYNCED });
    sendTimed(this.socket, this.options.peer, this.options.port, packet, true);
  }

  private answer(msg: Buffer): void {
    const rxNs = receivedAtNs(this.socket) ?? wallNs();
    let r: ReturnType<typeof decodeReflector>;
    try {
      r = decodeReflector(msg);
    } catch (err) {
      if (!(err instanceof StampPacketError)) throw err;
      this.malformed++;
      return;
    }
    const probe = this.find(r.senderSeq);
    if (!probe || probe.rttMs !== undefined) return; // unknown, too old, or a duplicate
    // RFC 8762 §4.2.1: (t4 − t1) − (t3 − t2), the reflector's own time left out.
    const rtt = rxNs - r.senderTxNs - (r.txNs - r.rxNs);
    probe.rttMs = Math.max(0, Number(rtt) / 1e6);
    probe.forwardLost = Math.max(0, r.senderSeq - r.seq);
    this.lastAnswerMs = Date.now();
    this.firstAnsweredSeq = Math.min(this.firstAnsweredSeq, probe.seq);
  }

  private find(seq: number): Probe | undefined {
    const first = this.probes[0]?.seq ?? 0;
    const p = this.probes[seq - first];
    return p?.seq === seq ? p : undefined;
  }

  private forget(nowMs: number): void {
    const before = nowMs - this.windowMs - this.timeoutMs;
    let n = 0;
    while (n < this.probes.length && (this.probes[n]?.sentMs ?? 0) < before) n++;
    if (n) this.probes.splice(0, n);
  }

  /** The window's statistics now. */
  stats(nowMs = Date.now()): ProbeStats {
    // Probes still in flight are neither answered nor lost yet. Probes sent before the
    // neighbour first answered are not the link's loss: its reflector was not up yet (the
    // link is down until then, by the timeout).
    const settled = this.probes.filter(
      (p) =>
        p.seq >= this.firstAnsweredSeq &&
        p.sentMs >= nowMs - this.windowMs - this.timeoutMs &&
        (p.rttMs !== undefined || p.sentMs <= nowMs - this.timeoutMs),
    );
    const answered = settled.filter((p) => p.rttMs !== undefined);
    const rtts = answered.map((p) => p.rttMs as number);
    const sorted = [...rtts].sort((a, b) => a - b);
    let jitter = 0;
    for (let i = 1; i < rtts.length; i++) jitter += Math.abs((rtts[i] ?? 0) - (rtts[i - 1] ?? 0));
    const lost = settled.length - answered.length;
    // Forward loss in the window: what the reflector's numbering adds up to across it.
    const firstAnswer = answered[0];
    const lastAnswer = answered[answered.length - 1];
    const forward =
      firstAnswer && lastAnswer ? (lastAnswer.forwardLost ?? 0) - (firstAnswer.forwardLost ?? 0) : 0;
    const forwardLost = Math.min(lost, Math.max(0, forward));
    const pct = (n: number) => (settled.length ? (n / settled.length) * 100 : 0);
    const probing = this.timer !== undefined && nowMs - this.startedMs >= this.timeoutMs;
    return {
      sent: settled.length,
      answered: answered.length,
      rttMs: sorted.length
        ? {
            min: sorted[0] ?? 0,
            median: sorted[Math.floor((sorted.length - 1) / 2)] ?? 0,
            mean: rtts.reduce((a, b) => a + b, 0) / rtts.length,
            p95: sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.95) - 1)] ?? 0,
          }
        : null,
      jitterMs: rtts.length > 1 ? jitter / (rtts.length - 1) : null,
      lossForwardPct: pct(forwardLost),
      lossBackwardPct: pct(lost - forwardLost),
      down: probing && nowMs - Math.max(this.lastAnswerMs, this.startedMs) > this.timeoutMs,
      lastAnswerMs: this.lastAnswerMs,
      malformed: this.malformed,
    };
  }

  /** Stops probing; answers to probes already sent still count until close(). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  close(): Promise<void> {
    this.stop();
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
