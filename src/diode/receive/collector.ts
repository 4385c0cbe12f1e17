/**
 * The receiver's packet collector: the link socket (read in batches by a thread of its own,
 * link-reader.ts, with a large receive buffer), frame checks, duplicate filtering and
 * dispatch. It never sends on the link socket.
 *
 * Per datagram: too long → oversized; not a valid frame → counted by reason; then the
 * duplicate filter — by default the sequence window over the link sequence (catches copies
 * in any order, counts frames lost with all their copies), or the paper's Algorithm 1
 * (`dedup: adjacent`) for comparison — and the frame goes to its handler.
 *
 * Senders are told apart by epoch; a few are tracked at once (a restarted sender starts a
 * new one), and the least recently heard is dropped when a new one appears (the TCP proxy
 * then aborts its sessions: `silentMs` no longer knows it).
 *
 * With a key ring (auth.ts) the tag is checked before anything else: a forged, corrupted or
 * unauthenticated frame is counted by reason and goes no further. Replays: within an epoch
 * the sequence window drops a frame seen before (or behind the window: sequences only grow
 * within an epoch, frame.ts SEQ_LIMIT); an epoch older than the newest one authenticated is
 * refused as `old-epoch`; and after a restart, frames of the newest epoch below its reserved
 * high-water mark are refused as `replay` (epoch-mark.ts: both kept on disk). With
 * `dedup: adjacent` and auth the window's verdict still applies.
 *
 * What arrived never stops the receiver: an exception in a frame's handler drops that frame,
 * counts it by kind (`handlerErrors`) and is logged once per kind.
 *
 * FEC (fec.ts): source frames go on as usual and are also kept by the block decoder; repair
 * frames of either code (their own sequence window) go to it only; frames it recovers — in
 * its worker thread — come back through the window and on to their handler like any other.
 */
import { diodeLog as log } from '../../shared/log.js';
import type { RecvConfig } from '../config.js';
import { type AuthFailure, type KeyRing, UNCHECKED, verdictFailure } from '../protocol/auth.js';
import { FecDecoder, type FecDecoderStats } from '../protocol/fec.js';
import { decodeFrame, type Frame, FrameFlag, FrameType, type RejectReason } from '../protocol/frame.js';
import { AdjacentDuplicateFilter } from './dedup-adjacent.js';
import { SequenceWindow } from './dedup-window.js';
import {
  type EpochMark,
  loadEpochMark,
  MIN_RESERVE_FRAMES,
  reserveFor,
  saveEpochMark,
} from './epoch-mark.js';
import { LinkReader, type LinkReaderStats, type ReceiveBuffer } from './link-reader.js';
import { MarkWriter } from './mark-writer.js';

export interface FrameHandlers {
  session(epoch: number, frame: Frame): void;
  udp(frame: Frame): void;
  /** `datagramsFromEpoch`: counted so far, in arrival order; undefined for a heartbeat FEC rebuilt. */
  heartbeat(epoch: number, frame: Frame, datagramsFromEpoch: number | undefined): void;
  /** File manifests, data and ends (files.ts). */
  file?(epoch: number, frame: Frame): void;
}

export interface CollectorOptions {
  auth?: KeyRing;
  /** Where the newest authenticated epoch is kept across restarts (replay of an old epoch). */
  epochFile?: string;
  /** FEC blocks are retired this long after their last symbol. */
  fecHoldMs?: number;
}

export interface CollectorCounters {
  datagrams: number;
  bytes: number;
  frames: number;
  rejected: Record<RejectReason | 'oversized', number>;
  duplicates: number;
  stale: number;
  /** Frames that never arrived in any copy, nor were recovered (they left the window unseen). */
  lostFrames: number;
  /**
   * Frames dropped by the authentication check, by reason; `replay`: below the high-water
   * mark of a previous run; `unreserved`: above the mark while it could not be written.
   */
  auth: Record<AuthFailure | 'replay' | 'unreserved', number>;
  /** Frames whose handler threw, by kind (the frame was dropped). */
  handlerErrors: Record<string, number>;
  repairFrames: number;
  repairDuplicates: number;

  /** Repair frames that never arrived (their own window). */
  lostRepairFrames: number;
  fec: FecDecoderStats;
}

interface EpochState {
  window: SequenceWindow;
  repairs: SequenceWindow;
  datagrams: number;
  lastHeard: number;
}

const MAX_EPOCHS = 4;

/** A repair symbol of either code (fec-code.ts): its own sequence, its own window. */
const isRepair = (frame: Frame) => frame.type === FrameType.Repair || frame.type === FrameType.Parity;

export class Collector {
  private readonly reader: LinkReader;
  private readonly epochs = new Map<number, EpochState>();
  private readonly adjacent = new AdjacentDuplicateFilter();
  private readonly fec: FecDecoder;
  private lostInDroppedEpochs = 0;
  private lostRepairsInDroppedEpochs = 0;
  /** With auth: the newest epoch and its reserved marks, as on disk; older epochs are refused. */
  private mark: EpochMark = { epoch: 0, link: 0, repair: 0 };
  /** Sequences of the newest epoch below these were possibly accepted by a previous run. */
  private floor = { link: 0, repair: 0 };
  private lastMarkFailure = Number.NEGATIVE_INFINITY;
  /** Writes the next mark ahead of need (with auth and an epoch file). */
  private readonly markWriter: MarkWriter | undefined;
  /** Per sequence: the reserve last written, and the sequence and time it was written at (the rate). */
  private readonly reserve = {
    link: { frames: MIN_RESERVE_FRAMES, seq: 0, at: 0 },
    repair: { frames: MIN_RESERVE_FRAMES, seq: 0, at: 0 },
  };
  private readonly loggedErrors = new Set<string>();
  get receiveBuffer(): ReceiveBuffer | undefined {
    return this.reader.receiveBuffer;
  }
  readonly counters: CollectorCounters = {
    datagrams: 0,
    bytes: 0,
    frames: 0,
    rejected: {
      short: 0,
      magic: 0,
      version: 0,
      type: 0,
      flags: 0,
      truncated: 0,
      trailing: 0,
      field: 0,
      oversized: 0,
    },
    duplicates: 0,
    stale: 0,
    lostFrames: 0,
    auth: { unauthenticated: 0, 'unknown-key': 0, 'bad-tag': 0, 'old-epoch': 0, replay: 0, unreserved: 0 },
    handlerErrors: {},
    repairFrames: 0,
    repairDuplicates: 0,
    lostRepairFrames: 0,
    fec: undefined as unknown as FecDecoderStats,
  };

  constructor(
    private readonly config: RecvConfig,
    private readonly handlers: FrameHandlers,
    private readonly options: CollectorOptions = {},
  ) {
    this.fec = new FecDecoder({
      holdMs: options.fecHoldMs ?? 1000,
      onRecovered: (epoch, frame) => this.guard('fec', () => this.recovered(epoch, frame)),
    });
    if (options.auth && options.epochFile) {
      const mark = loadEpochMark(options.epochFile); // throws (refuses to start) when unreadable
      if (mark) {
        this.mark = mark;
        this.floor = { link: mark.link, repair: mark.repair };
      }
      this.markWriter = new MarkWriter(options.epochFile);
    }
    const { listen, receiveBufferBytes, maxDatagramBytes, queueBytes } = config.link;
    this.reader = new LinkReader({
      ...(options.auth ? { keyFile: options.auth.file } : {}),
      host: listen.host,
      port: listen.port,
      receiveBufferBytes,
      maxDatagramBytes,
      queueBytes,
      onBatch: (datagrams, verdicts) => {
        for (let i = 0; i < datagrams.length; i++) this.receive(datagrams[i]!, verdicts[i]);
      },
    });
  }

  async start(): Promise<void> {
    const rb = await this.reader.start();
    if (rb.short) {
      log.warn(
        { ...rb },
        `receive buffer is ${rb.effective} bytes, less than the ${rb.requested} asked for: net.core.rmem_max is ${rb.rmemMax} ` +
          `and SO_RCVBUFFORCE was refused (run as root, or raise it: sysctl -w net.core.rmem_max=${rb.requested}); ` +
          'a small buffer is the first cause of loss on a diode',
      );
    } else log.info({ ...rb }, 'receive buffer set');
  }

  /** Ms since a frame of `epoch` was last heard; undefined for an epoch no longer tracked. */
  silentMs(epoch: number): number | undefined {
    const state = this.epochs.get(epoch);
    return state ? Date.now() - state.lastHeard : undefined;
  }

  /**
   * One datagram from the link; never throws (a frame that makes a handler throw is dropped).
   * `verdict`: its tag, checked already by the reader (auth.ts), if it was.
   */
  receive(msg: Buffer, verdict = UNCHECKED): void {
    this.guard('receive', () => this.take(msg, verdict));
  }

  /** Runs a step for one frame; an exception drops the frame, counted by kind and logged once per kind. */
  private guard(kind: string, step: () => void): void {
    try {
      step();
    } catch (err) {
      const c = this.counters.handlerErrors;
      c[kind] = (c[kind] ?? 0) + 1;
      if (this.loggedErrors.has(kind)) return;
      this.loggedErrors.add(kind);
      log.error(
        { kind, err },
        'a frame made its handler throw: dropped and counted (handlerErrors); further ones of this kind are counted, not logged',
      );
    }
  }

  private take(msg: Buffer, verdict: number): void {
    const c = this.counters;
    c.datagrams++;
    c.bytes += msg.length;
    if (msg.length > this.config.link.maxDatagramBytes) {
      c.rejected.oversized++;
      return;
    }
    const decoded = decodeFrame(msg);
    if (!decoded.ok) {
      c.rejected[decoded.reason]++;
      return;
    }
    const frame = decoded.frame;
    const auth = this.options.auth;
    if (auth) {
      const failure =
        verdict !== UNCHECKED
          ? verdictFailure(verdict)
          : (frame.flags & FrameFlag.Authenticated) === 0
            ? 'unauthenticated'
            : auth.verify(msg, frame.keyId, frame.payload.length);
      if (failure) {
        c.auth[failure]++;
        return;
      }
      if (frame.epoch < this.mark.epoch) {
        c.auth['old-epoch']++;
        return;
      }
      if (frame.epoch > this.mark.epoch) {
        this.mark = { epoch: frame.epoch, link: 0, repair: 0 };
        this.floor = { link: 0, repair: 0 };
        for (const r of Object.values(this.reserve)) r.at = 0;
      }
      if (!this.reserved(isRepair(frame) ? 'repair' : 'link', frame.linkSeq)) return;
    }
    const state = this.epochState(frame.epoch);
    state.datagrams++;
    state.lastHeard = Date.now();
    if (isRepair(frame)) {
      const verdict = state.repairs.accept(frame.linkSeq);
      if (verdict !== 'new') c.repairDuplicates++;
      else {
        c.repairFrames++;
        this.guard('fec', () => this.fec.repair(frame));
      }
      return;
    }
    if (this.config.dedup === 'adjacent') {
      if (this.adjacent.isDuplicate(msg)) {
        c.duplicates++;
        return;
      }
      // The window always sees the frame (FEC: a recovered frame that did arrive is not
      // delivered twice), and its replay check stands: behind the window is dropped, and with
      // auth so is any frame it has seen (a replay is a copy that Algorithm 1 did not catch).
      const verdict = state.window.accept(frame.linkSeq);
      if (verdict === 'stale' || (verdict === 'duplicate' && auth)) {
        if (verdict === 'duplicate') c.duplicates++;
        else c.stale++;
        return;
      }
    } else {
      const verdict = state.window.accept(frame.linkSeq);
      if (verdict !== 'new') {
        if (verdict === 'duplicate') c.duplicates++;
        else c.stale++;
        return;
      }
    }
    c.frames++;
    if (frame.flags & FrameFlag.Fec) this.guard('fec', () => this.fec.source(frame, msg));
    this.dispatch(frame, state);
  }

  /**
   * With auth: is `seq` (link or repair) of the newest epoch above what a previous run may have
   * accepted, and within the reserved mark on disk? The next mark is written ahead, in the
   * mark writer's thread, once half the reserve is used; a frame past the mark waits for a
   * write under way, or has one written in line when none is (the first frames of an epoch, a
   * jump). Nothing past a mark is taken before that mark is on disk.
   */
  private reserved(key: 'link' | 'repair', seq: number): boolean {
    if (seq < this.floor[key]) {
      this.counters.auth.replay++;
      return false;
    }
    const writer = this.markWriter;
    if (writer) this.markWritten(writer.settle());
    const r = this.reserve[key];
    if (seq + r.frames / 2 < this.mark[key]) return true;
    const file = this.options.epochFile;
    if (!file || !writer) return true;
    const now = performance.now();
    // A failed write is retried at most once a second; meanwhile only what is reserved passes.
    const retry = now - this.lastMarkFailure > 1000;
    const next = () => {
      const frames = r.at === 0 ? MIN_RESERVE_FRAMES : reserveFor(seq - r.seq, now - r.at);
      this.reserve[key] = { frames, seq, at: now };
      return { ...this.mark, [key]: seq + frames };
    };
    if (seq < this.mark[key]) {
      if (retry && !writer.busy) writer.write(next());
      return true;
    }
    if (writer.busy) this.markWritten(writer.wait());
    if (seq < this.mark[key]) return true;
    if (retry) {
      const mark = next();
      try {
        saveEpochMark(file, mark);
        this.mark = mark;
        return true;
      } catch (err) {
        this.markFailed((err as Error).message, file, now);
      }
    }
    this.counters.auth.unreserved++;
    return false;
  }

  /** A mark the writer has put on disk: the mark now, unless a newer epoch came meanwhile. */
  private markWritten(mark: EpochMark | undefined): void {
    const writer = this.markWriter;
    if (writer?.lastError) {
      this.markFailed(writer.lastError, this.options.epochFile ?? '', performance.now());
      writer.lastError = undefined;
    }
    if (!mark || mark.epoch !== this.mark.epoch) return;
    this.mark = {
      epoch: mark.epoch,
      link: Math.max(this.mark.link, mark.link),
      repair: Math.max(this.mark.repair, mark.repair),
    };
  }

  private markFailed(err: string, file: string, now: number): void {
    this.lastMarkFailure = now;
    log.error(
      { err, file },
      'cannot keep the newest epoch on disk: frames past the reserved mark are refused',
    );
  }

  private dispatch(frame: Frame, state: EpochState, rebuilt = false): void {
    switch (frame.type) {
      case FrameType.Udp:
        this.guard('udp', () => this.handlers.udp(frame));
        break;
      case FrameType.Heartbeat:
        this.guard('heartbeat', () =>
          this.handlers.heartbeat(frame.epoch, frame, rebuilt ? undefined : state.datagrams),
        );
        break;
      case FrameType.FileManifest:
      case FrameType.FileData:
      case FrameType.FileEnd:
        this.guard('file', () => this.handlers.file?.(frame.epoch, frame));
        break;
      default:
        this.guard('session', () => this.handlers.session(frame.epoch, frame));
    }
  }

  /** A frame the FEC decoder rebuilt: through the window (it may have arrived meanwhile) to its handler. */
  private recovered(epoch: number, frame: Frame): void {
    const state = this.epochs.get(epoch);
    if (!state) return;
    // A rebuilt frame past the mark is not held: its symbols are gone; it is lost like any other.
    if (this.options.auth && (epoch !== this.mark.epoch || this.reserved('link', frame.linkSeq) !== true))
      return;
    if (state.window.accept(frame.linkSeq) !== 'new') return;
    this.counters.frames++;
    this.dispatch(frame, state, true);
  }

  /** Retires old FEC blocks; the receiver calls it every 100 ms. */
  tick(): void {
    this.fec.tick((epoch) => this.epochs.has(epoch));
  }

  snapshot(): CollectorCounters {
    let lost = this.lostInDroppedEpochs;
    let lostRepairs = this.lostRepairsInDroppedEpochs;
    for (const s of this.epochs.values()) {
      lost += s.window.lost;
      lostRepairs += s.repairs.lost;
    }
    this.counters.lostFrames = lost;
    this.counters.lostRepairFrames = lostRepairs;
    this.counters.fec = this.fec.stats;
    return structuredClone(this.counters);
  }

  /** FEC blocks are being decoded or wait for the decoder: rebuilt frames may still come. */
  repairing(): boolean {
    return this.fec.repairing();
  }

  /** FEC blocks lost beyond repair so far. */
  fecFailed(): number {
    return this.fec.stats.failed;
  }

  /** The link socket's own counters: what the receiver dropped itself, and how full its buffers came. */
  readerStats(): LinkReaderStats {
    return this.reader.stats();
  }

  /** The reader re-reads the key file too. */
  reloadKeys(): void {
    this.reader.reloadKeys();
  }

  /** Asks for a larger receive buffer (the sender's rate × the longest pause to ride out). */
  resizeReceiveBuffer(bytes: number): void {
    this.reader.resize(bytes);
  }

  close(): void {
    this.reader.close();
    this.markWriter?.close();
    void this.fec.stop();
  }

  private epochState(epoch: number): EpochState {
    let state = this.epochs.get(epoch);
    if (state) return state;
    if (this.epochs.size >= MAX_EPOCHS) {
      const [oldest] = [...this.epochs.entries()].sort((a, b) => a[1].lastHeard - b[1].lastHeard);
      if (oldest) {
        this.epochs.delete(oldest[0]);
        this.lostInDroppedEpochs += oldest[1].window.lost;
        this.lostRepairsInDroppedEpochs += oldest[1].repairs.lost;
        log.warn({ epoch: oldest[0] }, 'sender epoch dropped: its sessions will be aborted');
      }
    }
    state = {
      window: new SequenceWindow(this.config.windowFrames),
      repairs: new SequenceWindow(this.config.windowFrames),
      datagrams: 0,
      lastHeard: Date.now(),
    };
    this.epochs.set(epoch, state);
    log.info({ epoch }, 'new sender epoch');
    return state;
  }
}
