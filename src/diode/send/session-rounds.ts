/**
 * Rounds of stored TCP sessions (sender). A session accepted into the spool (session-store.ts)
 * has had its live round — the frames sent while the client was sending. It stays in the
 * spool until that round has left for the link and, for a service with a carousel, until its
 * other rounds have too: each a new session on the link, read from the spool, whose open
 * frame names the origin so that the receiver delivers the session once. After a restart
 * every accepted session still in the spool is replayed: the live round it had, or the round
 * it was in, was cut short by the crash or never confirmed sent.
 *
 * A round counts as sent once its close frame has left the aggregator: originals leave in
 * order, so that is when as many originals have been sent as had been queued up to it.
 * Replayed rounds keep the session's Th2 (throttle.ts); the aggregator's buffer paces them.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { diodeLog as log } from '../../shared/log.js';
import type { AuditLog } from '../audit.js';
import { FrameType, Importance } from '../protocol/frame.js';
import type { SessionMark } from '../protocol/heartbeat.js';
import { encodeRoundOpen } from '../protocol/session-origin.js';
import type { Aggregator } from './aggregator.js';
import { type CarouselConfig, fewestRounds, roundsFinished } from './carousel.js';
import { Doorbell, PacedSubmitter } from './paced-submit.js';
import type { AcceptedSession, SessionStore } from './session-store.js';
import { ReadThrottle, type ThroughputRule, th2For } from './throttle.js';

export interface RoundsService {
  importance: Importance;
  carousel: CarouselConfig;
}

export interface SessionRoundsCounters {
  /** Rounds sent from the spool (carousel rounds and replays). */
  rounds: number;
  /** Sessions found in the spool at the start and sent again. */
  replayed: number;
  /** Sessions that had all their rounds and left the spool. */
  sent: number;
}

const READ_BYTES = 1 << 20;
/** Finished rounds stay in heartbeats this long, so a lost close frame is noticed. */
const CLOSED_KEPT_MS = 10_000;
const CHECK_SENT_MS = 100;

/** Originals queued on the aggregator so far (frames and FEC repairs): a mark in its send order. */
function queuedOriginals(a: Aggregator): number {
  return a.stats.frames + a.stats.repairFrames;
}

function sentOriginals(a: Aggregator): number {
  const s = a.snapshot();
  return s.datagramsSent - s.copiesSent;
}

export class SessionRounds {
  /** Sessions with rounds to come. */
  private readonly due: AcceptedSession[] = [];
  /** Rounds queued on the aggregator, waiting to have left. */
  private readonly inFlight: { session: AcceptedSession; mark: number }[] = [];
  private current: SessionMark | undefined;
  private readonly finished: { mark: SessionMark; at: number }[] = [];
  private readonly submitter: PacedSubmitter;
  private timer: NodeJS.Timeout | undefined;
  private readonly doorbell = new Doorbell();
  private stopped = false;
  readonly counters: SessionRoundsCounters = { rounds: 0, replayed: 0, sent: 0 };

  constructor(
    private readonly aggregator: Aggregator,
    private readonly store: SessionStore,
    private readonly audit: AuditLog,
    private readonly options: {
      services: Map<string, RoundsService>;
      throughput: ThroughputRule[];
      newSessionId: () => number;
    },
  ) {
    this.submitter = new PacedSubmitter(aggregator, () => this.stopped);
  }

  /** Takes up what the spool holds from before (replays) and starts sending rounds. */
  start(): void {
    for (const s of this.store.accepted()) {
      this.counters.replayed++;
      log.info(
        {
          origin: s.meta.origin,
          service: s.meta.service,
          bytes: s.meta.bytes,
          roundsDone: s.progress.roundsDone,
        },
        'stored session replayed',
      );
      this.audit.write('session-replayed', { ...this.auditFields(s), roundsDone: s.progress.roundsDone });
      this.due.push(s);
    }
    this.timer = setInterval(() => this.checkSent(), CHECK_SENT_MS);
    void this.loop().catch((err) => log.error({ err }, 'session rounds stopped'));
  }

  /** A session just accepted: its live round is queued (its close frame last). */
  liveRoundQueued(s: AcceptedSession): void {
    this.inFlight.push({ session: s, mark: queuedOriginals(this.aggregator) });
  }

  /** The round being sent and recently finished ones, for heartbeats. */
  marks(): SessionMark[] {
    const now = performance.now();
    while (this.finished.length > 0 && now - this.finished[0]!.at > CLOSED_KEPT_MS) this.finished.shift();
    return [...(this.current ? [this.current] : []), ...this.finished.map((f) => f.mark)];
  }

  /** Sessions in the spool: accepted, with rounds to come or in flight. */
  get stored(): number {
    return this.due.length + this.inFlight.length + (this.current ? 1 : 0);
  }

  /** Sends no more rounds; what is queued may still leave (the sender's grace period). */
  stop(): void {
    this.stopped = true;
    this.doorbell.wake();
  }

  /** After the grace period: confirms the rounds that left; the others are replayed after the restart. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.checkSent();
  }

  private carouselOf(s: AcceptedSession): CarouselConfig {
    return this.options.services.get(s.meta.service)?.carousel ?? { rounds: 1 };
  }

  private auditFields(s: AcceptedSession) {
    const { origin, service, destination, client, bytes, sha256 } = s.meta;
    return { origin, service, destination, client, bytes, sha256 };
  }

  private checkSent(): void {
    if (this.inFlight.length === 0) return;
    const sent = sentOriginals(this.aggregator);
    for (let i = 0; i < this.inFlight.length; ) {
      const f = this.inFlight[i]!;
      if (f.mark > sent) i++;
      else {
        this.inFlight.splice(i, 1);
        this.roundSent(f.session);
      }
    }
  }

  private roundSent(s: AcceptedSession): void {
    s.progress.roundsDone++;
    if (roundsFinished(this.carouselOf(s), s.progress)) {
      this.store.remove(s);
      this.counters.sent++;
      this.audit.write('session-sent', { ...this.auditFields(s), rounds: s.progress.roundsDone });
      return;
    }
    this.store.saveProgress(s);
    this.due.push(s);
    this.doorbell.wake();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const s = fewestRounds(this.due, (d) => d.progress);
      if (!s) {
        await this.doorbell.wait(500);
        continue;
      }
      this.due.splice(this.due.indexOf(s), 1);
      await this.round(s);
    }
  }

  /** Sends one round of `s` from the spool as a new session on the link. */
  private async round(s: AcceptedSession): Promise<void> {
    const m = s.meta;
    const session = this.options.newSessionId();
    const importance = this.options.services.get(m.service)?.importance ?? Importance.High;
    const th2 = th2For(this.options.throughput, {
      service: m.service,
      srcIp: m.client.address,
      srcPort: m.client.port,
      dstIp: m.destination.host,
      dstPort: m.destination.port,
    });
    const throttle = th2 ? new ReadThrottle(th2) : undefined;
    const mark: SessionMark = { session, lastSeq: 0, closed: false };
    this.current = mark;
    let seq = 0;
    const send = async (type: FrameType, payload: Buffer) => {
      await this.submitter.submit({ type, importance, session, seq, payload });
      mark.lastSeq = seq++;
    };
    await send(FrameType.Open, encodeRoundOpen(m, { origin: m.origin, round: s.progress.roundsDone }));
    const fd = openSync(s.data, 'r');
    try {
      const max = this.aggregator.maxPayload;
      for (let offset = 0; offset < m.bytes && !this.stopped; ) {
        // A fresh buffer per read: queued frames still point into the previous one.
        const buf = Buffer.allocUnsafe(Math.min(READ_BYTES, m.bytes - offset));
        const n = readSync(fd, buf, 0, buf.length, offset);
        if (n === 0) throw new Error(`${s.data} is shorter than its ${m.bytes} bytes`);
        for (let at = 0; at < n; at += max)
          await send(FrameType.Data, buf.subarray(at, Math.min(n, at + max)));
        offset += n;
        const wait = throttle?.take(n) ?? 0;
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    } catch (err) {
      // The spool lost the data: nothing can send it again. Abort on the link, report, forget.
      await send(FrameType.Abort, Buffer.alloc(0));
      this.endRound(mark);
      this.store.remove(s);
      log.error({ origin: m.origin, err }, 'stored session unreadable; dropped');
      this.audit.write('session-dropped', { ...this.auditFields(s), error: (err as Error).message });
      return;
    } finally {
      closeSync(fd);
    }
    if (this.stopped) return; // cut short: sent again after the restart
    await send(FrameType.Close, Buffer.alloc(0));
    this.endRound(mark);
    this.counters.rounds++;
    this.inFlight.push({ session: s, mark: queuedOriginals(this.aggregator) });
  }

  private endRound(mark: SessionMark): void {
    mark.closed = true;
    this.current = undefined;
    this.finished.push({ mark, at: performance.now() });
  }
}
