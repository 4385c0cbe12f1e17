/**
 * Forward error correction over blocks of frames (RaptorQ, RFC 6330; raptorq.ts).
 *
 * Sender (`FecEncoder`): consecutive original frames (every type but repairs) form a block:
 * their link sequences are contiguous, so a frame's place in its block is its link sequence
 * minus the block's first, which every frame carries in its block field. A block closes at
 * `blockFrames` frames or `maxDelayMs` after it opened, whichever is first; a worker thread
 * then computes R repair symbols (fec-sizing.ts: R from the expected loss and burst length
 * with margin, for this block's K), and the aggregator sends them as repair frames. The
 * source frames themselves go out unchanged and at once (a systematic code): a receiver
 * that loses nothing never waits for a block nor decodes one.
 *
 * A source symbol is the frame in compact form (frame.ts `writeSymbol`: 12 bytes of the
 * header that its place in the block does not say, then the payload, zero-padded to T
 * bytes). T = the largest datagram − header − tag, the size of a repair frame's payload, so
 * a source frame's payload is at most T − 12.
 *
 * Receiver (`FecDecoder`): keeps each recent block's symbols; once a block has lost
 * sources and K symbols have arrived, it decodes and hands the missing frames back to the
 * collector. Every block is accounted for when it retires: intact, repaired or failed, and
 * its spare — symbols received beyond K, i.e. how many more losses it could have taken
 * (negative: failed). The minimum spare and a histogram of spare/R tell how close the
 * link runs to the cliff.
 */
import type { Worker } from 'node:worker_threads';
import { log } from '../../shared/log.js';
import { ext, startWorker } from '../../shared/worker.js';
import { type FecSizing, repairsFor } from './fec-sizing.js';
import { decodeSymbol, type Frame, SYMBOL_HEADER_BYTES, writeSymbol } from './frame.js';
import { BlockDecoder, encodeRepairs, MAX_BLOCK_SYMBOLS, type RepairSymbol } from './raptorq.js';

export interface FecEncoderOptions {
  /** Symbol size T: a multiple of 8. */
  symbolBytes: number;
  blockFrames: number;
  maxDelayMs: number;
  sizing: FecSizing;
  /** Called with a closed block's repair symbols, in block order. */
  /** `tag`: what blockFor() was given for the block (the aggregator's epoch). */
  onRepairs(block: { first: number; k: number; r: number; tag: number; repairs: RepairSymbol[] }): void;
  /** Encode on the main thread (tests); a worker thread otherwise. */
  inline?: boolean;
}

export interface FecEncoderStats {
  blocks: number;
  sourceFrames: number;
  repairSymbols: number;
  /** Repair symbols per source frame so far. */
  overhead: number;
  encodeMs: number;
}

interface OpenBlock {
  first: number;
  tag: number;
  k: number;
  data: Buffer;
  timer: NodeJS.Timeout;
}

interface Job {
  id: number;
  first: number;
  tag: number;
  k: number;
  r: number;
  started: number;
}

export class FecEncoder {
  private open: OpenBlock | undefined;
  private worker: Worker | undefined;
  private readonly jobs = new Map<number, Job>();
  private nextJob = 0;
  private idleWaiters: (() => void)[] = [];
  readonly stats: FecEncoderStats = {
    blocks: 0,
    sourceFrames: 0,
    repairSymbols: 0,
    overhead: 0,
    encodeMs: 0,
  };

  constructor(private readonly options: FecEncoderOptions) {
    if (options.symbolBytes % 8 !== 0)
      throw new RangeError(`symbol size ${options.symbolBytes} is not a multiple of 8`);
    if (options.blockFrames < 1 || options.blockFrames > MAX_BLOCK_SYMBOLS)
      throw new RangeError(`blockFrames must be 1-${MAX_BLOCK_SYMBOLS}`);
    if (!options.inline) {
      this.worker = startWorker(new URL(`./fec-worker${ext}`, import.meta.url));
      this.worker.unref();
      this.worker.on('message', (m: { id: number; esi?: number[]; symbols?: Uint8Array; error?: string }) =>
        this.done(m),
      );
      this.worker.on('error', (err) => log.error({ err: err.message }, 'FEC worker failed'));
    }
  }

  /**
   * The first link sequence of the block the frame with `linkSeq` belongs to (opening one if
   * needed, tagged with `tag`: its repairs come back with it).
   */
  blockFor(linkSeq: number, tag = 0): number {
    if (!this.open) {
      const timer = setTimeout(() => this.close(), this.options.maxDelayMs);
      timer.unref();
      this.open = {
        first: linkSeq,
        tag,
        k: 0,
        data: Buffer.alloc(this.options.blockFrames * this.options.symbolBytes),
        timer,
      };
    }
    return this.open.first;
  }

  /** Adds the frame just numbered by blockFor (its encoded header, then payload). */
  add(header: Buffer, payload: Buffer): void {
    const b = this.open;
    if (!b) throw new Error('add() without blockFor()');
    if (SYMBOL_HEADER_BYTES + payload.length > this.options.symbolBytes)
      throw new RangeError(`payload of ${payload.length} bytes exceeds the symbol size`);
    writeSymbol(b.data, b.k * this.options.symbolBytes, header, payload);
    b.k++;
    this.stats.sourceFrames++;
    if (b.k === this.options.blockFrames) this.close();
  }

  /** Closes the open block now (its repairs follow asynchronously). */
  close(): void {
    const b = this.open;
    if (!b) return;
    clearTimeout(b.timer);
    this.open = undefined;
    if (b.k === 0) return;
    const t = this.options.symbolBytes;
    const r = Math.min(repairsFor(b.k, this.options.sizing), 0xffff);
    const data = b.data.subarray(0, b.k * t);
    this.stats.blocks++;
    const job: Job = {
      id: this.nextJob++,
      first: b.first,
      tag: b.tag,
      k: b.k,
      r,
      started: performance.now(),
    };
    if (r === 0) {
      this.options.onRepairs({ first: b.first, k: b.k, r, tag: b.tag, repairs: [] });
      return;
    }
    if (!this.worker) {
      this.finish(job, encodeRepairs(data, t, r));
      return;
    }
    this.jobs.set(job.id, job);
    // A copy the worker owns; the block buffer is not reused, so it can be transferred as is.
    const copy = new Uint8Array(data.buffer, data.byteOffset, data.length);
    this.worker.postMessage({ id: job.id, data: copy, t, r }, [copy.buffer as ArrayBuffer]);
    this.worker.ref();
  }

  /** Resolves when no block is open or being encoded. */
  idle(): Promise<void> {
    this.close();
    if (this.jobs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    if (this.open) clearTimeout(this.open.timer);
    this.open = undefined;
    await this.worker?.terminate();
  }

  private done(m: { id: number; esi?: number[]; symbols?: Uint8Array; error?: string }): void {
    const job = this.jobs.get(m.id);
    if (!job) return;
    this.jobs.delete(m.id);
    if (this.jobs.size === 0) this.worker?.unref();
    if (m.error || !m.esi || !m.symbols) {
      log.error({ block: job.first, err: m.error }, 'FEC encoding failed: the block goes without repairs');
      this.finish(job, []);
    } else {
      const t = this.options.symbolBytes;
      const symbols = Buffer.from(m.symbols.buffer, m.symbols.byteOffset, m.symbols.length);
      this.finish(
        job,
        m.esi.map((esi, i) => ({ esi, symbol: symbols.subarray(i * t, (i + 1) * t) })),
      );
    }
    if (this.jobs.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private finish(job: Job, repairs: RepairSymbol[]): void {
    this.stats.encodeMs += performance.now() - job.started;
    this.stats.repairSymbols += repairs.length;
    this.stats.overhead = this.stats.sourceFrames ? this.stats.repairSymbols / this.stats.sourceFrames : 0;
    this.options.onRepairs({ first: job.first, k: job.k, r: job.r, tag: job.tag, repairs });
  }
}

export interface BlockReport {
  first: number;
  k: number;
  r: number;
  /** Sources lost on the link (before repair). */
  lost: number;
  /** Symbols received beyond K: more losses the block could have taken; < 0 failed. */
  spare: number;
  outcome: 'intact' | 'repaired' | 'failed';
}

export interface FecDecoderStats {
  blocks: number;
  intact: number;
  repaired: number;
  failed: number;
  framesRecovered: number;
  framesUnrecovered: number;
  repairsReceived: number;
  /** Blocks retired before any repair symbol told their K (nothing to account them by). */
  unaccounted: number;
  /** Malformed FEC fields (out-of-range K, T or symbol ids). */
  malformed: number;
  decodeMs: number;
  /** The smallest spare of any block (null before the first). */
  minSpare: number | null;
  /** Blocks by spare as a fraction of R: failed, <10 %, <25 %, <50 %, >=50 %. */
  spareHistogram: { failed: number; under10: number; under25: number; under50: number; rest: number };
  recent: BlockReport[];
}

interface BlockState {
  first: number;
  /** The flags of the block's frames (recovered frames get them too). */
  flags: number;
  /** Source symbols kept until the block is done (complete or decoded). */
  sources: Map<number, Buffer>;
  sourcesSeen: number;
  repairs: RepairSymbol[];
  repairsSeen: number;
  done: boolean;
  k?: number;
  r?: number;
  t?: number;
  decoder?: BlockDecoder;
  decoded: boolean;
  lastHeard: number;
}

const RECENT = 16;
/**
 * Blocks held at once per epoch. Honest traffic holds a few dozen (a block lives holdMs after
 * its last symbol); a sender flooding block numbers gets its oldest blocks retired instead of
 * memory. Repair symbols kept per block: at most K (no decode needs more).
 */
const MAX_OPEN_BLOCKS = 256;

export class FecDecoder {
  private readonly epochs = new Map<number, Map<number, BlockState>>();
  readonly stats: FecDecoderStats = {
    blocks: 0,
    intact: 0,
    repaired: 0,
    failed: 0,
    framesRecovered: 0,
    framesUnrecovered: 0,
    repairsReceived: 0,
    unaccounted: 0,
    malformed: 0,
    decodeMs: 0,
    minSpare: null,
    spareHistogram: { failed: 0, under10: 0, under25: 0, under50: 0, rest: 0 },
    recent: [],
  };

  constructor(
    private readonly options: {
      /** A block is retired this long after its last symbol arrived. */
      holdMs: number;
      onRecovered(epoch: number, frame: Frame): void;
      now?: () => number;
    },
  ) {}

  private get now(): number {
    return this.options.now?.() ?? performance.now();
  }

  /** A source frame with the FEC flag (any copy); `datagram` is the frame as received. */
  source(frame: Frame, datagram: Buffer): void {
    const esi = (frame.linkSeq - frame.block) >>> 0;
    if (esi >= MAX_BLOCK_SYMBOLS) {
      this.stats.malformed++;
      return;
    }
    const b = this.block(frame.epoch, frame.block, frame.flags);
    // The collector's window passes each link sequence once, so every call is a new source.
    b.sourcesSeen++;
    b.lastHeard = this.now;
    if (b.done) return;
    const symbol = Buffer.allocUnsafe(SYMBOL_HEADER_BYTES + frame.payload.length);
    writeSymbol(symbol, 0, datagram, frame.payload);
    b.sources.set(esi, symbol);
    if (b.k !== undefined) this.check(frame.epoch, b, esi, symbol);
  }

  /** A repair frame: session = K << 16 | R, seq = symbol id, payload = the symbol. */
  repair(frame: Frame): void {
    const k = frame.session >>> 16;
    const r = frame.session & 0xffff;
    const t = frame.payload.length;
    if (k < 1 || k > MAX_BLOCK_SYMBOLS || t % 8 !== 0 || t <= SYMBOL_HEADER_BYTES || frame.seq < k) {
      this.stats.malformed++;
      return;
    }
    const b = this.block(frame.epoch, frame.block, frame.flags);
    if (b.k !== undefined && (b.k !== k || b.t !== t)) {
      this.stats.malformed++;
      return;
    }
    this.stats.repairsReceived++;
    b.k = k;
    b.r = r;
    b.t = t;
    b.repairsSeen++;
    b.lastHeard = this.now;
    if (b.done || b.repairs.length >= k) return;
    const symbol = { esi: frame.seq, symbol: Buffer.from(frame.payload) };
    b.repairs.push(symbol);
    this.check(frame.epoch, b, symbol.esi, symbol.symbol);
  }

  /** Retires blocks not heard from for `holdMs`, and those of epochs no longer tracked. */
  tick(liveEpoch: (epoch: number) => boolean): void {
    const now = this.now;
    for (const [epoch, blocks] of this.epochs) {
      const live = liveEpoch(epoch);
      for (const b of blocks.values())
        if (!live || now - b.lastHeard > this.options.holdMs) this.retire(blocks, b);
      if (blocks.size === 0) this.epochs.delete(epoch);
    }
  }

  /** Blocks held in memory (sources and repairs waiting). */
  held(): number {
    let n = 0;
    for (const blocks of this.epochs.values()) n += blocks.size;
    return n;
  }

  snapshot(): FecDecoderStats {
    return structuredClone(this.stats);
  }

  private block(epoch: number, first: number, flags: number): BlockState {
    let blocks = this.epochs.get(epoch);
    if (!blocks) {
      blocks = new Map();
      this.epochs.set(epoch, blocks);
    }
    let b = blocks.get(first);
    if (!b) {
      if (blocks.size >= MAX_OPEN_BLOCKS) {
        let oldest: BlockState | undefined;
        for (const o of blocks.values()) if (!oldest || o.lastHeard < oldest.lastHeard) oldest = o;
        if (oldest) this.retire(blocks, oldest);
      }
      b = {
        first,
        flags,
        sources: new Map(),
        sourcesSeen: 0,
        repairs: [],
        repairsSeen: 0,
        done: false,
        decoded: false,
        lastHeard: this.now,
      };
      blocks.set(first, b);
    }
    return b;
  }

  /** After a new symbol: complete → done; lost sources and >= K symbols → decode. */
  private check(epoch: number, b: BlockState, esi: number, symbol: Buffer): void {
    const k = b.k!;
    if (b.sources.size >= k) {
      this.finishBlock(b);
      return;
    }
    if (b.sources.size + b.repairs.length < k) return;
    const started = performance.now();
    let out: Uint8Array | undefined;
    if (!b.decoder) {
      b.decoder = new BlockDecoder(k, b.t!);
      for (const [i, s] of b.sources) out ??= b.decoder.add(i, s);
      for (const rep of b.repairs) out ??= b.decoder.add(rep.esi, rep.symbol);
    } else out = b.decoder.add(esi, symbol);
    this.stats.decodeMs += performance.now() - started;
    if (!out) return;
    const t = b.t!;
    const whole = Buffer.from(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < k; i++) {
      if (b.sources.has(i)) continue;
      const frame = decodeSymbol(whole.subarray(i * t, (i + 1) * t), {
        epoch,
        flags: b.flags,
        block: b.first,
        linkSeq: (b.first + i) >>> 0,
      });
      if (!frame) {
        this.stats.malformed++;
        continue;
      }
      this.stats.framesRecovered++;
      this.options.onRecovered(epoch, frame);
    }
    b.decoded = true;
    this.finishBlock(b);
  }

  /** Frees a block's symbols; it stays to count the symbols still arriving until it retires. */
  private finishBlock(b: BlockState): void {
    b.done = true;
    b.sources.clear();
    b.repairs = [];
    b.decoder?.free();
    b.decoder = undefined;
  }

  private retire(blocks: Map<number, BlockState>, b: BlockState): void {
    blocks.delete(b.first);
    this.finishBlock(b);
    const s = this.stats;
    if (b.k === undefined) {
      s.unaccounted++;
      return;
    }
    const k = b.k;
    const r = b.r ?? 0;
    const lost = Math.max(0, k - b.sourcesSeen);
    const spare = b.sourcesSeen + b.repairsSeen - k;
    const outcome = lost === 0 ? 'intact' : b.decoded ? 'repaired' : 'failed';
    s.blocks++;
    s[outcome]++;
    if (outcome === 'failed') s.framesUnrecovered += lost;
    s.minSpare = s.minSpare === null ? spare : Math.min(s.minSpare, spare);
    const h = s.spareHistogram;
    const frac = r > 0 ? spare / r : 1;
    if (outcome === 'failed') h.failed++;
    else if (frac < 0.1) h.under10++;
    else if (frac < 0.25) h.under25++;
    else if (frac < 0.5) h.under50++;
    else h.rest++;
    s.recent.push({ first: b.first, k, r, lost, spare, outcome });
    if (s.recent.length > RECENT) s.recent.shift();
    if (outcome === 'failed')
      log.warn({ block: b.first, k, r, lost }, 'FEC block failed: more lost than its repairs');
  }
}
