/**
 * Forward error correction over blocks of frames, in one of two codes (fec-code.ts): RaptorQ
 * (RFC 6330, raptorq.ts) or LDPC-staircase with dense rows (ldpc.ts), both systematic.
 *
 * Sender (`FecEncoder`): consecutive original frames (every type but repairs) form a block:
 * their link sequences are contiguous, so a frame's place in its block is its link sequence
 * minus the block's first, which every frame carries in its block field. A block closes at
 * `blockFrames` frames or `maxDelayMs` after it opened, whichever is first; a worker thread
 * then computes R repair symbols (fec-sizing.ts: R from the expected loss and burst length
 * with margin, for this block's K and the code's decode overhead), and the aggregator sends
 * them as repair frames (type Repair for RaptorQ, Parity for LDPC). The source frames go out
 * unchanged and at once: a receiver that loses nothing never waits for a block nor decodes
 * one. `backlog` — blocks handed to the worker and not yet encoded — is the aggregator's
 * back-pressure: repairs that fall behind their sources by seconds come too late to help.
 *
 * A source symbol is the frame in compact form (frame.ts `writeSymbol`: 12 bytes of the
 * header that its place in the block does not say, then the payload, zero-padded to T
 * bytes). T = the largest datagram − header − tag, the size of a repair frame's payload, so
 * a source frame's payload is at most T − 12.
 *
 * Receiver (`FecDecoder`): keeps each recent block's symbols; once a block has lost sources,
 * holds at least K symbols and its repairs are all in (or none came for QUIET_MS), a worker
 * thread decodes it and the missing frames go back to the collector (a decode that needs
 * more symbols is tried again when more arrive). Every block is accounted for when it
 * retires: intact, repaired or failed, and its spare — symbols received beyond K, i.e. how
 * many more losses it could have taken (negative: failed). The minimum spare and a histogram
 * of spare/R tell how close the link runs to the cliff. Symbols of a block already retired
 * are counted as late, not taken for a new block.
 */
import type { Worker } from 'node:worker_threads';
import { diodeLog as log } from '../../shared/log.js';
import { ext, startWorker } from '../../shared/worker.js';
import {
  codeOfType,
  type FecCode,
  type FecJob,
  type FecResult,
  maxBlockSymbols,
  runFecJob,
  type Symbols,
} from './fec-code.js';
import { type FecSizing, repairsFor } from './fec-sizing.js';
import { decodeSymbol, type Frame, SYMBOL_HEADER_BYTES, writeSymbol } from './frame.js';

export interface RepairSymbol {
  esi: number;
  symbol: Buffer;
}

type Reply = { id: number } & FecResult;

/**
 * The FEC worker thread (fec-worker.ts), or the same calls in line (tests). A thread that dies
 * answers every job it held with an error (an encoder's block goes without repairs, a decoder's
 * block waits for more symbols or fails), and the next job starts a new one.
 */
class FecThread {
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, (reply: Reply) => void>();
  private next = 0;
  private stopped = false;

  constructor(private readonly inline: boolean) {}

  /** Jobs handed over and not yet answered. */
  get pending(): number {
    return this.waiting.size;
  }

  /** Runs a job; `transfer` are buffers the worker may take (the caller lets go of them). */
  run(job: FecJob, transfer: ArrayBuffer[], done: (reply: Reply) => void): void {
    const id = this.next++;
    if (this.inline) {
      done({ id, ...runFecJob(job) });
      return;
    }
    if (this.stopped) {
      done({ id, error: 'the FEC thread is stopped' });
      return;
    }
    const worker = this.worker ?? this.startThread();
    this.waiting.set(id, done);
    worker.ref();
    worker.postMessage({ ...job, id }, transfer);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private startThread(): Worker {
    const worker = startWorker(new URL(`./fec-worker${ext}`, import.meta.url));
    this.worker = worker;
    worker.on('message', (m: Reply) => {
      const done = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) worker.unref();
      done?.(m);
    });
    const failed = (error: string) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      if (!this.stopped) log.error({ err: error, jobs: this.waiting.size }, 'FEC thread failed');
      const jobs = [...this.waiting];
      this.waiting.clear();
      for (const [id, done] of jobs) done({ id, error });
    };
    worker.on('error', (err) => failed(err.message));
    worker.on('exit', (code) => failed(`the FEC thread exited (${code})`));
    // After the listeners: a 'message' listener refs the thread again.
    worker.unref();
    return worker;
  }
}

export interface FecEncoderOptions {
  code: FecCode;
  /** Symbol size T: a multiple of 8. */
  symbolBytes: number;
  blockFrames: number;
  maxDelayMs: number;
  sizing: FecSizing;
  /**
   * Called with a closed block's repair symbols, in block order; `tag`: what blockFor() was
   * given for the block (the aggregator's epoch).
   */
  onRepairs(block: {
    first: number;
    k: number;
    r: number;
    tag: number;
    code: FecCode;
    repairs: RepairSymbol[];
  }): void;
  /** Encode on the main thread (tests); a worker thread otherwise. */
  inline?: boolean;
}

export interface FecEncoderStats {
  code: FecCode;
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

export class FecEncoder {
  private open: OpenBlock | undefined;
  private readonly thread: FecThread;
  private idleWaiters: (() => void)[] = [];
  readonly stats: FecEncoderStats;

  constructor(private readonly options: FecEncoderOptions) {
    if (options.symbolBytes % 8 !== 0)
      throw new RangeError(`symbol size ${options.symbolBytes} is not a multiple of 8`);
    const max = maxBlockSymbols(options.code);
    if (options.blockFrames < 1 || options.blockFrames > max)
      throw new RangeError(`blockFrames must be 1-${max}`);
    this.stats = {
      code: options.code,
      blocks: 0,
      sourceFrames: 0,
      repairSymbols: 0,
      overhead: 0,
      encodeMs: 0,
    };
    this.thread = new FecThread(!!options.inline);
  }

  /** Closed blocks whose repairs are still being computed. */
  get backlog(): number {
    return this.thread.pending;
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
    const { code, symbolBytes: t } = this.options;
    const r = Math.min(repairsFor(b.k, this.options.sizing, code), 0xffff);
    this.stats.blocks++;
    const block = { first: b.first, k: b.k, r, tag: b.tag, code };
    if (r === 0) {
      this.options.onRepairs({ ...block, repairs: [] });
      return;
    }
    const data = b.data.subarray(0, b.k * t);
    // The block buffer is not reused, so the worker may take it as it is.
    const view = new Uint8Array(data.buffer, data.byteOffset, data.length);
    const started = performance.now();
    // The worker answers in order: repairs go out in block order.
    this.thread.run({ op: 'encode', code, data: view, t, r }, [view.buffer as ArrayBuffer], (m) => {
      this.stats.encodeMs += performance.now() - started;
      let repairs: RepairSymbol[] = [];
      if (m.error || !m.esis || !m.symbols)
        log.error({ block: b.first, err: m.error }, 'FEC encoding failed: the block goes without repairs');
      else {
        const symbols = Buffer.from(m.symbols.buffer, m.symbols.byteOffset, m.symbols.length);
        repairs = [...m.esis].map((esi, i) => ({ esi, symbol: symbols.subarray(i * t, (i + 1) * t) }));
      }
      this.stats.repairSymbols += repairs.length;
      this.stats.overhead = this.stats.sourceFrames ? this.stats.repairSymbols / this.stats.sourceFrames : 0;
      this.options.onRepairs({ ...block, repairs });
      if (this.thread.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
  }

  /** Resolves when no block is open or being encoded. */
  idle(): Promise<void> {
    this.close();
    if (this.thread.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async stop(): Promise<void> {
    if (this.open) clearTimeout(this.open.timer);
    this.open = undefined;
    await this.thread.stop();
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
  /** Symbols of blocks already retired (their repairs came too late to help). */
  late: number;
  /** Decodes run, and those that needed more symbols than the block then held. */
  decodes: number;
  decodesShort: number;
  decodeMs: number;
  /** The smallest spare of any block (null before the first). */
  minSpare: number | null;
  /** Blocks by spare as a fraction of R: failed, <10 %, <25 %, <50 %, >=50 %. */
  spareHistogram: { failed: number; under10: number; under25: number; under50: number; rest: number };
  recent: BlockReport[];
}

/**
 * Chunks of blocks done, for the next blocks: at 1 % loss every block is held until decoded,
 * and fresh chunks for each (untouched memory, then collected) cost more than the copies
 * into them.
 */
const spareChunks: Buffer[] = [];
/** 32 MiB: the blocks a 1 Gbit/s link fills in a quarter of a second. */
const SPARE_CHUNKS = 128;

/** Source symbols of a block, packed into a few large buffers (no allocation per frame). */
class SourceStore {
  private readonly chunks: Buffer[] = [];
  private used = CHUNK_BYTES;
  readonly symbols = new Map<number, Buffer>();

  /** Keeps frame `esi` as a source symbol (unpadded). */
  add(esi: number, datagram: Buffer, payload: Buffer): void {
    const size = SYMBOL_HEADER_BYTES + payload.length;
    if (this.used + size > CHUNK_BYTES) {
      this.chunks.push(
        (size <= CHUNK_BYTES ? spareChunks.pop() : undefined) ??
          Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, size)),
      );
      this.used = 0;
    }
    const chunk = this.chunks[this.chunks.length - 1]!;
    const symbol = chunk.subarray(this.used, this.used + size);
    this.used += (size + 7) & ~7;
    writeSymbol(symbol, 0, datagram, payload);
    this.symbols.set(esi, symbol);
  }

  /** Forgets the symbols (their chunks go to the next blocks). */
  clear(): void {
    for (const c of this.chunks)
      if (c.length === CHUNK_BYTES && spareChunks.length < SPARE_CHUNKS) spareChunks.push(c);
    this.chunks.length = 0;
    this.symbols.clear();
    this.used = CHUNK_BYTES;
  }
}

const CHUNK_BYTES = 256 * 1024;

interface BlockState {
  first: number;
  /** The flags of the block's frames (recovered frames get them too). */
  flags: number;
  /** Source symbols kept until the block is done (complete or decoded). */
  sources: SourceStore;
  sourcesSeen: number;
  repairs: RepairSymbol[];
  repairsSeen: number;
  done: boolean;
  code?: FecCode;
  k?: number;
  r?: number;
  t?: number;
  decoded: boolean;
  /** A decode is running; the symbols held when it started. */
  decoding: boolean;
  triedWith: number;
  lastHeard: number;
}

const RECENT = 16;
/**
 * Blocks held at once per epoch. Honest traffic holds a few dozen (a block lives holdMs after
 * its last symbol); a sender flooding block numbers gets its oldest blocks retired instead of
 * memory. Repair symbols kept per block: at most K (no decode needs more).
 */
const MAX_OPEN_BLOCKS = 256;
/** Retired blocks remembered per epoch, so their late symbols are not taken for new blocks. */
const RETIRED_REMEMBERED = 4096;
/** Decodes running or waiting at once (each holds a block's symbols). */
const MAX_DECODES = 4;
/** A block whose repairs are not all in is decoded once this long passes without a symbol. */
export const QUIET_MS = 30;

export class FecDecoder {
  private readonly epochs = new Map<number, Map<number, BlockState>>();
  private readonly retired = new Map<number, { set: Set<number>; order: number[] }>();
  private readonly thread: FecThread;
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
    late: 0,
    decodes: 0,
    decodesShort: 0,
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
      /** Decode on the main thread (tests); a worker thread otherwise. */
      inline?: boolean;
    },
  ) {
    this.thread = new FecThread(!!options.inline);
  }

  private get now(): number {
    return this.options.now?.() ?? performance.now();
  }

  /** A source frame with the FEC flag (any copy); `datagram` is the frame as received. */
  source(frame: Frame, datagram: Buffer): void {
    const esi = (frame.linkSeq - frame.block) >>> 0;
    if (esi >= maxBlockSymbols('raptorq')) {
      this.stats.malformed++;
      return;
    }
    const b = this.block(frame.epoch, frame.block, frame.flags);
    if (!b) return;
    // The collector's window passes each link sequence once, so every call is a new source.
    b.sourcesSeen++;
    b.lastHeard = this.now;
    if (b.done) return;
    b.sources.add(esi, datagram, frame.payload);
    if (b.k !== undefined && b.sources.symbols.size >= b.k) this.finishBlock(b);
  }

  /** A repair frame: session = K << 16 | R, seq = symbol id, payload = the symbol. */
  repair(frame: Frame): void {
    const code = codeOfType(frame.type);
    const k = frame.session >>> 16;
    const r = frame.session & 0xffff;
    const t = frame.payload.length;
    const bad =
      !code ||
      k < 1 ||
      k > maxBlockSymbols(code) ||
      r < 1 ||
      t % 8 !== 0 ||
      t <= SYMBOL_HEADER_BYTES ||
      frame.seq < k ||
      (code === 'ldpc' && frame.seq >= k + r);
    if (bad) {
      this.stats.malformed++;
      return;
    }
    const b = this.block(frame.epoch, frame.block, frame.flags);
    if (!b) return;
    if (b.k !== undefined && (b.k !== k || b.r !== r || b.t !== t || b.code !== code)) {
      this.stats.malformed++;
      return;
    }
    this.stats.repairsReceived++;
    b.code = code;
    b.k = k;
    b.r = r;
    b.t = t;
    b.repairsSeen++;
    b.lastHeard = this.now;
    if (b.done) return;
    if (b.sources.symbols.size >= k) {
      this.finishBlock(b);
      return;
    }
    if (b.repairs.length < k) b.repairs.push({ esi: frame.seq, symbol: Buffer.from(frame.payload) });
    if (b.repairsSeen >= r) this.tryDecode(frame.epoch, b);
  }

  /**
   * Decodes blocks gone quiet with enough symbols; retires blocks not heard from for `holdMs`
   * (not while a decode of theirs runs), and those of epochs no longer tracked.
   */
  tick(liveEpoch: (epoch: number) => boolean): void {
    const now = this.now;
    for (const [epoch, blocks] of this.epochs) {
      const live = liveEpoch(epoch);
      for (const b of blocks.values()) if (live && now - b.lastHeard >= QUIET_MS) this.tryDecode(epoch, b);
      // A block waiting for the decoder (busy with others) is not given up: it holds what it needs.
      for (const b of blocks.values())
        if (!live || (now - b.lastHeard > this.options.holdMs && !b.decoding && !this.decodable(b)))
          this.retire(epoch, blocks, b);
      if (blocks.size === 0) this.epochs.delete(epoch);
    }
    for (const epoch of this.retired.keys()) if (!liveEpoch(epoch)) this.retired.delete(epoch);
  }

  /** Blocks being decoded or waiting for the decoder: frames they rebuild are still to come. */
  repairing(): boolean {
    for (const blocks of this.epochs.values())
      for (const b of blocks.values()) if (b.decoding || this.decodable(b)) return true;
    return false;
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

  async stop(): Promise<void> {
    await this.thread.stop();
  }

  /** The block `first` of `epoch`, opened if new; undefined (counted late) if it was retired. */
  private block(epoch: number, first: number, flags: number): BlockState | undefined {
    let blocks = this.epochs.get(epoch);
    if (!blocks) {
      blocks = new Map();
      this.epochs.set(epoch, blocks);
    }
    let b = blocks.get(first);
    if (b) return b;
    if (this.retired.get(epoch)?.set.has(first)) {
      this.stats.late++;
      return undefined;
    }
    if (blocks.size >= MAX_OPEN_BLOCKS) {
      let oldest: BlockState | undefined;
      for (const o of blocks.values()) if (!oldest || o.lastHeard < oldest.lastHeard) oldest = o;
      if (oldest) this.retire(epoch, blocks, oldest);
    }
    b = {
      first,
      flags,
      sources: new SourceStore(),
      sourcesSeen: 0,
      repairs: [],
      repairsSeen: 0,
      done: false,
      decoded: false,
      decoding: false,
      triedWith: 0,
      lastHeard: this.now,
    };
    blocks.set(first, b);
    return b;
  }

  /** Whether `b` lost sources, holds K symbols or more, and holds more than at its last try. */
  private decodable(b: BlockState): boolean {
    if (b.done || b.k === undefined) return false;
    const held = b.sources.symbols.size + b.repairs.length;
    return held >= b.k && held > b.triedWith;
  }

  /** Decodes `b` if it is decodable and the decoder has room. */
  private tryDecode(epoch: number, b: BlockState): void {
    if (b.decoding || this.thread.pending >= MAX_DECODES || !this.decodable(b)) return;
    const held = b.sources.symbols.size + b.repairs.length;
    const { k, r, t, code } = b as Required<BlockState>;
    let esis = new Uint32Array(held);
    let symbols = new Uint8Array(held * t);
    let i = 0;
    for (const [esi, s] of b.sources.symbols) {
      // A source longer than the block's symbols (only a forged one is) cannot be in its code.
      if (s.length > t || esi >= k) {
        this.stats.malformed++;
        continue;
      }
      esis[i] = esi;
      symbols.set(s, i++ * t);
    }
    for (const rep of b.repairs) {
      esis[i] = rep.esi;
      symbols.set(rep.symbol, i++ * t);
    }
    if (i < held) {
      esis = esis.slice(0, i);
      symbols = symbols.slice(0, i * t);
    }
    b.decoding = true;
    b.triedWith = held;
    this.stats.decodes++;
    this.thread.run({ op: 'decode', code, k, r, t, esis, symbols }, [esis.buffer, symbols.buffer], (m) => {
      b.decoding = false;
      this.stats.decodeMs += m.ms ?? 0;
      if (m.error) {
        this.stats.malformed++;
        log.warn({ block: b.first, err: m.error }, 'FEC block could not be decoded');
        return;
      }
      if (m.short || !m.esis || !m.symbols) {
        this.stats.decodesShort++;
        this.tryDecode(epoch, b);
        return;
      }
      if (!b.done) this.recovered(epoch, b, m as Symbols);
    });
  }

  private recovered(epoch: number, b: BlockState, out: Symbols): void {
    const t = b.t!;
    const whole = Buffer.from(out.symbols.buffer, out.symbols.byteOffset, out.symbols.length);
    out.esis.forEach((i, n) => {
      if (b.sources.symbols.has(i)) return;
      const frame = decodeSymbol(whole.subarray(n * t, (n + 1) * t), {
        epoch,
        flags: b.flags,
        block: b.first,
        linkSeq: (b.first + i) >>> 0,
      });
      if (!frame) {
        this.stats.malformed++;
        return;
      }
      this.stats.framesRecovered++;
      this.options.onRecovered(epoch, frame);
    });
    b.decoded = true;
    this.finishBlock(b);
  }

  /** Frees a block's symbols; it stays to count the symbols still arriving until it retires. */
  private finishBlock(b: BlockState): void {
    b.done = true;
    b.sources.clear();
    b.repairs = [];
  }

  private retire(epoch: number, blocks: Map<number, BlockState>, b: BlockState): void {
    blocks.delete(b.first);
    this.finishBlock(b);
    let retired = this.retired.get(epoch);
    if (!retired) {
      retired = { set: new Set(), order: [] };
      this.retired.set(epoch, retired);
    }
    retired.set.add(b.first);
    retired.order.push(b.first);
    if (retired.order.length > RETIRED_REMEMBERED) retired.set.delete(retired.order.shift()!);
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
      log.warn({ block: b.first, k, r, lost, code: b.code }, 'FEC block failed: more lost than its repairs');
  }
}
