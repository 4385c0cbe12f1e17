/**
 * The node's on-disk spool of record batches not yet acknowledged by the tower: it is what
 * lets telemetry survive a lost tower link and a kill -9 of the node.
 *
 * Layout (in `dir`): segment files `<firstSeq, 16 digits>.seg` holding frames
 * `[u32 length][u32 crc32][v8-serialized RecordBatch]`, appended and fsync'ed once per
 * batch (one batch per export interval; docs/operations.md has the measured cost), and
 * `state.json` with the acknowledged cursor and the records lost so far (written durably:
 * atomic-file.ts). A torn frame at the tail (power cut mid-write) is cut off at open, an
 * empty segment is removed, and an unreadable state.json is rebuilt from the segments:
 * everything they hold is sent again (the tower drops what it already has).
 *
 * The read cursor moves only on the tower's ack; fully acknowledged segments are deleted.
 * When the spool exceeds `maxBytes`, the oldest segment goes and its unacknowledged
 * records are counted in `lost` — which the node reports in its MonitorStats
 * (records_lost), so the loss is never silent.
 */
import {
  closeSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { crc32 } from 'node:zlib';
import type { RecordBatch } from '../../proto/index.js';
import { fsyncPath, writeFileAtomic } from '../../shared/atomic-file.js';
import { nodeLog as log } from '../../shared/log.js';

const HEADER = 8;

export interface SpoolOptions {
  /** Most bytes on disk (default 256 MiB); beyond it the oldest segment goes, counted. */
  maxBytes?: number;
  /** A new segment starts past this size (default maxBytes / 16, at most 16 MiB). */
  segmentBytes?: number;
  /** fsync every append (default true). */
  fsync?: boolean;
}

interface Entry {
  firstSeq: number;
  lastSeq: number;
  records: number;
  /** When the batch was cut (its stats record's time), for the export lag. */
  timeMs: number;
  offset: number;
  length: number;
}

interface Segment {
  file: string;
  bytes: number;
  entries: Entry[];
}

interface State {
  acked: number;
  lost: number;
}

const count = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/** state.json's content; undefined when absent, null when unreadable (empty, torn, not a state). */
function readState(file: string): State | undefined | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const s = JSON.parse(text) as Partial<State>;
    if (count(s?.acked) && count(s.lost)) return { acked: s.acked, lost: s.lost };
  } catch {
    // not JSON: below
  }
  return null;
}

const timeOf = (b: RecordBatch) => Number(b.stats?.[0]?.timeMs ?? Date.now());
const recordsOf = (b: RecordBatch) =>
  (b.flows?.length ?? 0) +
  (b.http?.length ?? 0) +
  (b.stats?.length ?? 0) +
  (b.links?.length ?? 0) +
  (b.routes?.length ?? 0);

/** The first index of a sorted array where `past` holds (the array's length if nowhere). */
function firstIndex<T>(items: T[], past: (item: T) => boolean): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (past(items[mid] as T)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

export class Spool {
  private readonly segments: Segment[] = [];
  private fd: number | undefined;
  private state: State = { acked: 0, lost: 0 };
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly sync: boolean;
  private unacked = 0;
  /** When the newest acknowledged batch was cut (this process's life; undefined before the first ack). */
  ackedTimeMs: number | undefined;

  constructor(
    private readonly dir: string,
    options: SpoolOptions = {},
  ) {
    this.maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
    this.segmentBytes = options.segmentBytes ?? Math.min(16 * 1024 * 1024, Math.ceil(this.maxBytes / 16));
    this.sync = options.fsync ?? true;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const state = readState(join(dir, 'state.json'));
    if (state) this.state = state;
    for (const name of readdirSync(dir)
      .filter((n) => n.endsWith('.seg'))
      .sort()) {
      const seg = this.scan(join(dir, name));
      if (seg.entries.length) this.segments.push(seg);
      else unlinkSync(seg.file); // created just before a power cut: holds nothing
    }
    if (state === null) {
      // Everything on disk is sent again; the tower drops what it already stored.
      const first = this.segments[0]?.entries[0]?.firstSeq ?? 1;
      this.state = { acked: first - 1, lost: 0 };
      this.saveState();
      log.warn(
        { dir, resendFrom: first },
        'spool state.json unreadable (a power cut?): rebuilt from the segments; records lost before are no longer counted',
      );
    }
    this.dropAcknowledged();
    for (const s of this.segments)
      for (const e of s.entries) if (e.lastSeq > this.state.acked) this.unacked += e.records;
  }

  /** Reads a segment's frames; a torn or corrupt tail is cut off. */
  private scan(file: string): Segment {
    const data = readFileSync(file);
    const entries: Entry[] = [];
    let offset = 0;
    while (offset + HEADER <= data.length) {
      const length = data.readUInt32LE(offset);
      const sum = data.readUInt32LE(offset + 4);
      const body = data.subarray(offset + HEADER, offset + HEADER + length);
      if (body.length !== length || crc32(body) !== sum) break;
      const b = deserialize(body) as RecordBatch;
      entries.push({
        firstSeq: Number(b.firstSeq),
        lastSeq: Number(b.lastSeq),
        records: recordsOf(b),
        timeMs: timeOf(b),
        offset,
        length,
      });
      offset += HEADER + length;
    }
    if (offset < data.length) {
      log.warn({ file, kept: offset, cut: data.length - offset }, 'spool: torn tail cut off');
      const fd = openSync(file, 'r+');
      ftruncateSync(fd, offset);
      fsyncSync(fd);
      closeSync(fd);
    }
    return { file, bytes: offset, entries };
  }

  /** Adds a batch; durable on return when fsync is on. */
  append(batch: RecordBatch): void {
    const body = serialize(batch);
    const frame = Buffer.allocUnsafe(HEADER + body.length);
    frame.writeUInt32LE(body.length, 0);
    frame.writeUInt32LE(crc32(body), 4);
    body.copy(frame, HEADER);
    let seg = this.segments.at(-1);
    if (!seg || this.fd === undefined || seg.bytes >= this.segmentBytes) {
      if (this.fd !== undefined) closeSync(this.fd);
      seg = {
        file: join(this.dir, `${String(batch.firstSeq).padStart(16, '0')}.seg`),
        bytes: 0,
        entries: [],
      };
      this.segments.push(seg);
      this.fd = openSync(seg.file, 'a');
      if (this.sync) fsyncPath(this.dir);
    }
    writeSync(this.fd, frame);
    if (this.sync) fsyncSync(this.fd);
    seg.entries.push({
      firstSeq: Number(batch.firstSeq),
      lastSeq: Number(batch.lastSeq),
      records: recordsOf(batch),
      timeMs: timeOf(batch),
      offset: seg.bytes,
      length: body.length,
    });
    seg.bytes += frame.length;
    this.unacked += recordsOf(batch);
    this.enforceBound();
  }

  private enforceBound(): void {
    while (this.bytes > this.maxBytes && this.segments.length > 1) {
      const seg = this.segments.shift() as Segment;
      const lost = seg.entries.filter((e) => e.lastSeq > this.state.acked).reduce((n, e) => n + e.records, 0);
      const last = seg.entries.at(-1)?.lastSeq ?? 0;
      unlinkSync(seg.file);
      this.unacked -= lost;
      this.state = { acked: Math.max(this.state.acked, last), lost: this.state.lost + lost };
      this.saveState();
      log.warn({ records: lost, lostSoFar: this.state.lost }, 'spool full: oldest records dropped');
    }
  }

  /** The tower stored everything up to `lastSeq`. */
  ack(lastSeq: number): void {
    if (lastSeq <= this.state.acked) return;
    // Only the first segments hold acknowledged entries (the rest are deleted): stop early.
    scan: for (const seg of this.segments)
      for (const e of seg.entries) {
        if (e.lastSeq > lastSeq) break scan;
        if (e.lastSeq > this.state.acked) this.unacked -= e.records;
        this.ackedTimeMs = e.timeMs;
      }
    this.state = { ...this.state, acked: lastSeq };
    this.saveState();
    this.dropAcknowledged();
  }

  private dropAcknowledged(): void {
    while (this.segments.length > 1) {
      const seg = this.segments[0] as Segment;
      if ((seg.entries.at(-1)?.lastSeq ?? 0) > this.state.acked) break;
      this.segments.shift();
      unlinkSync(seg.file);
    }
  }

  private saveState(): void {
    writeFileAtomic(join(this.dir, 'state.json'), JSON.stringify(this.state));
  }

  /** The first unacknowledged batch after `afterSeq`, read from disk; undefined when none. */
  next(afterSeq: number): RecordBatch | undefined {
    const after = Math.max(afterSeq, this.state.acked);
    // Segments and their entries are in seq order: binary searches keep a long backfill linear.
    const si = firstIndex(this.segments, (s) => (s.entries.at(-1)?.lastSeq ?? 0) > after);
    const seg = this.segments[si];
    if (!seg) return undefined;
    const e = seg.entries[firstIndex(seg.entries, (x) => x.lastSeq > after)];
    if (!e) return undefined;
    const fd = openSync(seg.file, 'r');
    try {
      const body = Buffer.allocUnsafe(e.length);
      readSync(fd, body, 0, e.length, e.offset + HEADER);
      return deserialize(body) as RecordBatch;
    } finally {
      closeSync(fd);
    }
  }

  /** When the oldest unacknowledged batch was cut (ms since the epoch); undefined when none. */
  get oldestUnackedMs(): number | undefined {
    for (const s of this.segments)
      for (const e of s.entries) if (e.lastSeq > this.state.acked) return e.timeMs;
    return undefined;
  }

  /** Records lost to the bound, over the spool's life (persisted). */
  get lost(): number {
    return this.state.lost;
  }

  get acked(): number {
    return this.state.acked;
  }

  /** The last seq spooled (0 when empty). */
  get lastSeq(): number {
    return this.segments.at(-1)?.entries.at(-1)?.lastSeq ?? this.state.acked;
  }

  /** Unacknowledged records. */
  get records(): number {
    return this.unacked;
  }

  get bytes(): number {
    return this.segments.reduce((n, s) => n + s.bytes, 0);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Size on disk as the file system sees it (for checks). */
  static diskBytes(dir: string): number {
    return readdirSync(dir)
      .filter((n) => n.endsWith('.seg'))
      .reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  }
}
