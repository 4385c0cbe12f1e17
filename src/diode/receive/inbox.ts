/**
 * Files across the diode, receiver side. A file is written into a temporary place, checked,
 * and only then moved — one atomic rename — into the inbox:
 *
 *   <spool>/incoming/<id>/{manifest.json, data.part, have.bitmap}   being received
 *   <inbox>/<name>                                                 complete, SHA-256 checked
 *   <spool>/quarantine/<id>-<name>/{manifest.json, data.part, error.json}   incomplete or bad
 *   <spool>/done/<id>                                              seen to its end (a carousel
 *                                                                  repeats it: not delivered twice)
 *
 * A file is known by (id, size, SHA-256, sender time), not by its 32-bit id alone: a new file
 * whose id was used before (in done/ or still incoming) is a new file, received as such; a
 * file in done/ is forgotten after `rememberDoneMs`. Every manifest that is ignored — already
 * received, impossible (a chunk size that does not fit a frame, too many chunks), too many
 * files at once — is counted and audited (`file-ignored`, once per file, reason and round).
 *
 * Bounded by what a manifest may ask: the chunk size must fit a frame, at most `maxChunks`
 * chunks (the bitmap is in memory), at most `maxIncomingFiles` at once, and the free space
 * must hold the file on top of what the files being received still need (each reserves its
 * size). File names (safeName) are cut to 255 bytes of UTF-8 and stripped of control and bidi
 * characters; delivery never replaces an existing file (a hard link, which fails if the name
 * is taken, then a name with the id).
 *
 * Nothing here waits on the disk in the frame path: chunks are written in runs in the
 * background (part-file.ts), and syncs, the chunk map and the final checks run there too.
 * `have.bitmap` (which chunks are on disk) is saved every second after an fdatasync of the
 * data, and holds only chunks whose writes had completed before it, so it never claims a
 * chunk the disk does not hold: a receiver killed and restarted picks up where it was and
 * completes from the rest of the round or a later one. The spool must be on the inbox's
 * filesystem (the rename), by default `<inbox>/.tacmesh`.
 *
 * Incomplete: after the sender's final round ended (or nothing was heard of the file for
 * `incompleteAfterMs`), the file goes to quarantine with the list of missing byte ranges and
 * an error record. Disk full: a file that does not fit is refused at its manifest, and a
 * write that fails for lack of space quarantines the file; a small reserve file is given up
 * to write the error record. Nothing already in the inbox is ever touched.
 */
import {
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fsync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fsyncPathAsync, writeFileAtomic, writeFileAtomicAsync } from '../../shared/atomic-file.js';
import { diodeLog as log } from '../../shared/log.js';
import type { AuditLog } from '../audit.js';
import { isDiskFull, sha256File } from '../disk.js';
import { decodeEnd, decodeManifest, type Manifest, type ManifestPayload } from '../protocol/file-frames.js';
import { type Frame, FrameType } from '../protocol/frame.js';
import type { CalibrationRecorder } from './calibration.js';
import { hasChunk, markChunks } from './chunk-bits.js';
import { PartFile } from './part-file.js';
import { PrefixHash } from './prefix-hash.js';

export interface InboxConfig {
  inbox: string;
  spool: string;
  incompleteAfterMs: number;
  maxFileBytes: number;
  /** Bytes kept free (a reserve file) so an error record can still be written on a full disk. */
  reserveBytes: number;
  persistEveryMs: number;
  /** Files received at once. */
  maxIncomingFiles: number;
  /** Chunks of one file. */
  maxChunks: number;
  /** The largest chunk a frame can carry (the link's largest datagram less the header). */
  maxChunkBytes: number;
  /** A file in done/ is forgotten after this long. */
  rememberDoneMs: number;
  /**
   * FEC blocks are still being decoded (their rebuilt chunks to come): a file whose final
   * round has ended waits for them, up to incompleteAfterMs, before it is found incomplete.
   */
  repairing?: () => boolean;
}

/** The smallest chunk a sender uses (its frame payload is at least 64 bytes). */
export const MIN_CHUNK_BYTES = 64;

export interface InboxCounters {
  manifests: number;
  badManifests: number;
  chunks: number;
  duplicateChunks: number;
  /** Chunks held because their manifest had not arrived yet (FEC may still be rebuilding it). */
  heldBeforeManifest: number;
  /** Chunks dropped for want of a manifest (held too long, or too many held). */
  withoutManifest: number;
  delivered: number;
  deliveredBytes: number;
  quarantined: number;
  refusedDiskFull: number;
  /** Manifests ignored (each audited as file-ignored): already received, impossible, too many at once. */
  ignored: number;
  /** A file arrived with the id of another one (in done/ or incoming): received as a new file. */
  idCollisions: number;
}

interface Incoming {
  manifest: Manifest;
  dir: string;
  part: PartFile;
  /** Chunks received (on disk or on their way there: `part.written` says which are on disk). */
  have: Uint8Array;
  count: number;
  dirty: boolean;
  /** A save of the chunk map is under way. */
  persisting: boolean;
  lastHeard: number;
  finalEnded: boolean;
  verifying: boolean;
  /** Hashes the file as it arrives; none for a file resumed after a restart (hashed at the end). */
  hash?: PrefixHash;
}

export interface IncomingStatus {
  id: number;
  name: string;
  size: number;
  receivedChunks: number;
  chunks: number;
}

/** Characters that reorder how a name is shown (a "txt.exe" shown as "exe.txt"). */
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** The longest file name Linux filesystems take, in bytes. */
export const NAME_MAX_BYTES = 255;

/** `s` cut to at most `max` bytes of UTF-8, never inside a character. */
export function cutUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  let bytes = 0;
  let out = '';
  for (const ch of s) {
    bytes += Buffer.byteLength(ch);
    if (bytes > max) break;
    out += ch;
  }
  return out;
}

/**
 * A file name safe to create in the inbox: no directories, no hidden or special names, no
 * control or bidi characters, at most 255 - `room` bytes of UTF-8 (room for a suffix).
 */
export function safeName(name: string, room = 0): string {
  const base = name.split(/[/\\]/).pop() ?? '';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  const clean = base.replace(BIDI, '').replace(/[\u0000-\u001f\u007f]/g, '_');
  const named = !clean || clean === '.' || clean === '..' ? '_' : clean.startsWith('.') ? `_${clean}` : clean;
  return cutUtf8(named, NAME_MAX_BYTES - room) || '_';
}

/**
 * Moves `part` into `dir` as `name`, never replacing a file already there: a hard link (which
 * fails if the name is taken, with no window between a check and the rename), then the part
 * is unlinked; a taken name becomes `name.<id>`, then `name.<id>-2`... On a filesystem without
 * hard links, the name is claimed with an exclusive create (O_EXCL) and the part renamed over
 * that claim. Returns the path.
 */
export function deliverNoReplace(part: string, dir: string, name: string, id: number): string {
  for (let n = 0; n < 1000; n++) {
    const suffix = n === 0 ? '' : n === 1 ? `.${id}` : `.${id}-${n}`;
    const target = join(dir, `${safeName(name, Buffer.byteLength(suffix))}${suffix}`);
    try {
      linkSync(part, target);
      unlinkSync(part);
      return target;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    }
    try {
      closeSync(openSync(target, 'wx', 0o600));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw err;
    }
    renameSync(part, target);
    return target;
  }
  throw new Error(`no free name for ${name} in ${dir}`);
}

/** What tells two files with one id apart. */
function identity(m: Pick<Manifest, 'size' | 'sha256' | 'senderTime'>): string {
  return `${m.size}:${m.sha256}:${m.senderTime}`;
}

interface DoneEntry {
  /** identity(); undefined for an entry written before issue 16 (it matches any file of the id). */
  identity: string | undefined;
  at: number;
}

/** Missing chunks of a bitmap as byte ranges [start, end) (at most `max` ranges). */
export function missingRanges(have: Uint8Array, m: Manifest, max = 1000): [number, number][] {
  const out: [number, number][] = [];
  let start = -1;
  for (let i = 0; i <= m.chunks; i++) {
    const missing = i < m.chunks && !hasChunk(have, i);
    if (missing && start < 0) start = i;
    if (!missing && start >= 0) {
      out.push([start * m.chunkBytes, Math.min(m.size, i * m.chunkBytes)]);
      start = -1;
      if (out.length >= max) break;
    }
  }
  return out;
}

/** Chunks of not-yet-announced files kept in memory, in all (each counted with HELD_OVERHEAD). */
const HELD_MAX_BYTES = 32 * 1024 * 1024;
const HELD_OVERHEAD = 128;
const HELD_MAX_MS = 30_000;
/** Distinct ignored manifests audited per minute; beyond, they are counted (and summed up once a minute). */
const IGNORED_AUDITS_PER_MINUTE = 1024;

export class FileReceiver {
  private readonly incoming = new Map<number, Incoming>();
  /** Chunks that arrived before their file's manifest (lost, and rebuilt by FEC a block later). */
  private readonly held = new Map<number, { since: number; frames: Frame[] }>();
  private heldBytes = 0;
  private readonly done = new Map<number, DoneEntry>();
  private readonly dirs: { incoming: string; quarantine: string; done: string; reserve: string };
  private lastPersist = 0;
  private lastPrune = Date.now();
  /** Ignored manifests audited this minute (by file, reason and round), and those not audited. */
  private readonly audited = new Set<string>();
  private unaudited = 0;
  readonly counters: InboxCounters = {
    manifests: 0,
    badManifests: 0,
    chunks: 0,
    duplicateChunks: 0,
    heldBeforeManifest: 0,
    withoutManifest: 0,
    delivered: 0,
    deliveredBytes: 0,
    quarantined: 0,
    refusedDiskFull: 0,
    ignored: 0,
    idCollisions: 0,
  };

  constructor(
    private readonly config: InboxConfig,
    private readonly audit: AuditLog,
    /** Calibration files are measured by it, then removed (calibration.ts). */
    private readonly calibration?: CalibrationRecorder,
  ) {
    this.dirs = {
      incoming: join(config.spool, 'incoming'),
      quarantine: join(config.spool, 'quarantine'),
      done: join(config.spool, 'done'),
      reserve: join(config.spool, 'reserve'),
    };
  }

  /** Creates the directories and resumes the files a previous run left incomplete. */
  start(): void {
    mkdirSync(this.config.inbox, { recursive: true });
    for (const d of [this.dirs.incoming, this.dirs.quarantine, this.dirs.done])
      mkdirSync(d, { recursive: true, mode: 0o700 });
    this.loadDone();
    this.makeReserve();
    for (const e of readdirSync(this.dirs.incoming)) {
      const dir = join(this.dirs.incoming, e);
      try {
        const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
        const have = new Uint8Array(Math.ceil(manifest.chunks / 8));
        try {
          have.set(readFileSync(join(dir, 'have.bitmap')).subarray(0, have.length));
        } catch {
          // nothing saved yet
        }
        let count = 0;
        for (let i = 0; i < manifest.chunks; i++) if (hasChunk(have, i)) count++;
        const fd = openSync(join(dir, 'data.part'), 'r+');
        const id = manifest.id;
        this.incoming.set(id, {
          manifest,
          dir,
          part: this.partFile(fd, manifest, have.slice()),
          have,
          count,
          dirty: false,
          persisting: false,
          lastHeard: Date.now(),
          finalEnded: false,
          verifying: false,
        });
        log.info({ id: manifest.id, name: manifest.name, have: count, of: manifest.chunks }, 'file resumed');
        if (count === manifest.chunks) void this.finish(this.incoming.get(manifest.id)!);
      } catch (err) {
        log.warn({ dir, err }, 'an incoming file could not be resumed; removed');
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }

  onFrame(_epoch: number, frame: Frame): void {
    switch (frame.type) {
      case FrameType.FileManifest:
        this.manifest(frame);
        break;
      case FrameType.FileData:
        this.data(frame);
        break;
      case FrameType.FileEnd: {
        const end = decodeEnd(frame.payload);
        const inc = this.incoming.get(frame.session);
        if (end?.final && inc) {
          inc.finalEnded = true;
          inc.lastHeard = Date.now();
        }
        break;
      }
    }
  }

  private manifest(frame: Frame): void {
    const m = decodeManifest(frame.payload);
    if (!m || m.id !== frame.session) {
      this.counters.badManifests++;
      this.ignore({ id: frame.session }, 'not a sound manifest', 'bad');
      return;
    }
    this.counters.manifests++;
    const manifest: Manifest = {
      id: m.id,
      name: m.name,
      size: m.size,
      sha256: m.sha256,
      senderTime: m.senderTime,
      chunkBytes: m.chunkBytes,
      chunks: m.chunks,
      ...(m.calibration ? { calibration: m.calibration } : {}),
    };
    const key = identity(m);
    const known = this.incoming.get(m.id);
    if (known) {
      if (identity(known.manifest) === key) {
        known.lastHeard = Date.now();
        return;
      }
      // Another file with this id: the sender has let go of the older one (it sends one at a
      // time, and never reuses an id it still holds), so that one cannot complete any more.
      if (known.verifying) {
        this.ignore(manifest, 'another file with this id is being checked', m.round);
        return;
      }
      this.counters.idCollisions++;
      this.quarantine(known, `superseded: another file (${m.name}, ${m.size} bytes) came with id ${m.id}`);
    }
    const done = this.done.get(m.id);
    if (done) {
      if (done.identity === undefined || done.identity === key) {
        this.ignore(manifest, 'already received (or quarantined): a later round', m.round);
        return;
      }
      this.counters.idCollisions++;
      this.forgetDone(m.id);
    }
    if (m.chunkBytes < MIN_CHUNK_BYTES || m.chunkBytes > this.config.maxChunkBytes) {
      this.ignore(
        manifest,
        `chunk size ${m.chunkBytes} does not fit a frame (${MIN_CHUNK_BYTES}-${this.config.maxChunkBytes})`,
        m.round,
      );
      return;
    }
    if (m.chunks > this.config.maxChunks) {
      this.ignore(
        manifest,
        `${m.chunks} chunks: more than files.maxChunks (${this.config.maxChunks})`,
        m.round,
      );
      return;
    }
    if (this.incoming.size >= this.config.maxIncomingFiles) {
      this.ignore(
        manifest,
        `${this.incoming.size} files being received: files.maxIncomingFiles; a later round may bring it`,
        m.round,
      );
      return;
    }
    if (m.size > this.config.maxFileBytes) {
      this.refuse(manifest, `larger than files.maxFileBytes (${this.config.maxFileBytes})`);
      return;
    }
    const free = this.freeBytes();
    const promised = this.promisedBytes();
    if (free - promised < m.size + this.config.reserveBytes) {
      this.counters.refusedDiskFull++;
      this.refuse(
        manifest,
        `disk full: ${m.size} bytes needed, ${free} free in ${this.config.spool} of which ${promised} are promised to the files being received`,
      );
      return;
    }
    this.open(manifest, m);
  }

  /** Bytes the files being received still need (each reserved its size at its manifest). */
  private promisedBytes(): number {
    let n = 0;
    for (const inc of this.incoming.values())
      if (!inc.verifying) n += Math.max(0, inc.manifest.size - inc.count * inc.manifest.chunkBytes);
    return n;
  }

  /** A manifest not acted on: counted, and audited once per file, reason and round (a bounded number a minute). */
  private ignore(m: Partial<Manifest> & { id: number }, reason: string, round: number | 'bad'): void {
    this.counters.ignored++;
    const key = `${m.id}:${m.size}:${m.sha256}:${m.senderTime}:${round}:${reason}`;
    if (this.audited.has(key)) return;
    if (this.audited.size >= IGNORED_AUDITS_PER_MINUTE) {
      this.unaudited++;
      return;
    }
    this.audited.add(key);
    this.audit.write('file-ignored', { ...m, round, reason });
    log.info({ id: m.id, name: m.name, round, reason }, 'file manifest ignored');
  }

  private open(manifest: Manifest, m: ManifestPayload): void {
    const dir = join(this.dirs.incoming, String(m.id));
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileAtomic(join(dir, 'manifest.json'), JSON.stringify(manifest));
      const fd = openSync(join(dir, 'data.part'), 'w+', 0o600);
      const part = this.partFile(fd, manifest);
      this.incoming.set(m.id, {
        manifest,
        dir,
        part,
        have: new Uint8Array(Math.ceil(m.chunks / 8)),
        count: 0,
        dirty: false,
        persisting: false,
        lastHeard: Date.now(),
        finalEnded: false,
        verifying: false,
        hash: new PrefixHash(m.chunks, (i, most) => part.read(i, most)),
      });
      this.audit.write('file-receiving', {
        id: m.id,
        name: m.name,
        size: m.size,
        sha256: m.sha256,
        round: m.round,
      });
      log.info({ id: m.id, name: m.name, size: m.size, round: m.round }, 'file incoming');
      if (manifest.calibration) this.calibration?.opened(manifest);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      if (isDiskFull(err)) this.counters.refusedDiskFull++;
      this.refuse(manifest, `cannot store: ${(err as Error).message}`);
      return;
    }
    const held = this.held.get(m.id);
    if (!held) return;
    this.held.delete(m.id);
    for (const f of held.frames) {
      this.heldBytes -= f.payload.length + HELD_OVERHEAD;
      this.data(f);
    }
  }

  private data(frame: Frame): void {
    const inc = this.incoming.get(frame.session);
    if (!inc) {
      if (!this.done.has(frame.session)) this.hold(frame);
      return;
    }
    if (inc.verifying) return;
    const m = inc.manifest;
    const i = frame.seq;
    const expected = i === m.chunks - 1 ? m.size - i * m.chunkBytes : m.chunkBytes;
    if (i >= m.chunks || frame.payload.length !== expected) {
      this.counters.badManifests++;
      return;
    }
    inc.lastHeard = Date.now();
    if (hasChunk(inc.have, i)) {
      this.counters.duplicateChunks++;
      return;
    }
    inc.part.write(i, frame.payload);
    markChunks(inc.have, i);
    try {
      inc.hash?.add(i, frame.payload, (j) => hasChunk(inc.have, j));
    } catch (err) {
      // Reading back an early chunk failed: the file is hashed in full at the end instead.
      inc.hash = undefined;
      log.warn({ id: m.id, err }, 'cannot hash the file as it arrives');
    }
    inc.count++;
    inc.dirty = true;
    this.counters.chunks++;
    if (inc.count === m.chunks) void this.finish(inc);
  }

  /** Keeps a chunk whose manifest has not come (yet), within a memory budget. */
  private hold(frame: Frame): void {
    const cost = frame.payload.length + HELD_OVERHEAD;
    if (this.heldBytes + cost > HELD_MAX_BYTES) {
      this.counters.withoutManifest++;
      return;
    }
    let h = this.held.get(frame.session);
    if (!h) {
      h = { since: Date.now(), frames: [] };
      this.held.set(frame.session, h);
    }
    h.frames.push({ ...frame, payload: Buffer.from(frame.payload) });
    this.heldBytes += cost;
    this.counters.heldBeforeManifest++;
  }

  /** Saves chunk maps, quarantines files that can no longer complete; every 100 ms. */
  tick(): void {
    const now = Date.now();
    for (const [id, h] of this.held) {
      if (now - h.since < HELD_MAX_MS) continue;
      this.held.delete(id);
      for (const f of h.frames) this.heldBytes -= f.payload.length + HELD_OVERHEAD;
      this.counters.withoutManifest += h.frames.length;
    }
    if (now - this.lastPrune >= 60_000) {
      this.lastPrune = now;
      this.pruneDone(now);
      if (this.unaudited > 0)
        this.audit.write('file-ignored-unaudited', {
          count: this.unaudited,
          perMinute: IGNORED_AUDITS_PER_MINUTE,
        });
      this.unaudited = 0;
      this.audited.clear();
    }
    for (const inc of this.incoming.values()) inc.part.tick();
    if (now - this.lastPersist >= this.config.persistEveryMs) {
      this.lastPersist = now;
      for (const inc of this.incoming.values()) if (inc.dirty && !inc.verifying) this.persist(inc);
      this.makeReserve();
    }
    for (const inc of this.incoming.values()) {
      if (inc.verifying) continue;
      const idle = now - inc.lastHeard;
      if (
        inc.finalEnded &&
        idle > 2000 &&
        !(this.config.repairing?.() && idle < this.config.incompleteAfterMs)
      )
        this.quarantine(inc, 'incomplete after the final round');
      else if (idle > this.config.incompleteAfterMs)
        this.quarantine(inc, `incomplete: nothing heard for ${this.config.incompleteAfterMs} ms`);
    }
  }

  /** Writes and saves what is gathered, in line (shutting down), and closes the part files. */
  stop(): void {
    for (const inc of this.incoming.values()) {
      if (inc.verifying) continue;
      try {
        inc.part.flushSync();
        fdatasyncSync(inc.part.fd);
        writeFileAtomic(join(inc.dir, 'have.bitmap'), inc.part.written);
      } catch (err) {
        log.warn({ id: inc.manifest.id, err }, 'cannot save file progress');
      }
      inc.part.close();
    }
    this.incoming.clear();
  }

  list(): IncomingStatus[] {
    return [...this.incoming.values()].map((inc) => ({
      id: inc.manifest.id,
      name: inc.manifest.name,
      size: inc.manifest.size,
      receivedChunks: inc.count,
      chunks: inc.manifest.chunks,
    }));
  }

  /** A part file that quarantines its file when a write fails. */
  private partFile(fd: number, m: Manifest, written?: Uint8Array): PartFile {
    return new PartFile(
      fd,
      m.chunkBytes,
      m.size,
      m.chunks,
      (err) => {
        const inc = this.incoming.get(m.id);
        if (inc?.part.fd !== fd || inc.verifying) return;
        this.quarantine(inc, isDiskFull(err) ? `disk full while writing: ${err.message}` : err.message);
      },
      written,
    );
  }

  /**
   * Saves the chunk map in the background: the chunks written by now, after an fdatasync, so
   * the map never claims a chunk the disk does not hold.
   */
  private persist(inc: Incoming): void {
    if (inc.persisting) return;
    inc.persisting = true;
    inc.dirty = false;
    const written = inc.part.written.slice();
    const fail = (err: Error) => {
      inc.persisting = false;
      if (this.incoming.get(inc.manifest.id) !== inc || inc.verifying) return;
      if (isDiskFull(err)) this.quarantine(inc, `disk full while saving progress: ${err.message}`);
      else log.warn({ id: inc.manifest.id, err }, 'cannot save file progress');
    };
    fdatasync(inc.part.fd, (err) => {
      if (err) return fail(err);
      writeFileAtomicAsync(join(inc.dir, 'have.bitmap'), written).then(() => {
        inc.persisting = false;
      }, fail);
    });
  }

  private async finish(inc: Incoming): Promise<void> {
    inc.verifying = true;
    const m = inc.manifest;
    const part = join(inc.dir, 'data.part');
    try {
      await inc.part.drained();
      if (this.incoming.get(m.id) !== inc) return;
      const failed = inc.part.failed;
      if (failed) {
        this.quarantine(
          inc,
          isDiskFull(failed) ? `disk full while writing: ${failed.message}` : failed.message,
        );
        return;
      }
      await promisify(fsync)(inc.part.fd);
      inc.part.close();
      const sha = inc.hash?.digest() ?? (await sha256File(part));
      if (sha !== m.sha256) {
        this.quarantine(inc, `SHA-256 mismatch: got ${sha}, the manifest says ${m.sha256}`);
        return;
      }
      if (m.calibration) {
        this.removeCalibration(inc, { whole: true });
        return;
      }
      const target = deliverNoReplace(part, this.config.inbox, m.name, m.id);
      await fsyncPathAsync(this.config.inbox);
      this.markDone(m, 'delivered');
      rmSync(inc.dir, { recursive: true, force: true });
      this.incoming.delete(m.id);
      this.counters.delivered++;
      this.counters.deliveredBytes += m.size;
      this.audit.write('file-received', { ...m, path: target });
      log.info({ id: m.id, name: m.name, size: m.size, path: target }, 'file delivered');
    } catch (err) {
      this.quarantine(inc, `cannot deliver: ${(err as Error).message}`);
    }
  }

  /** A calibration file over: measured (calibration.ts), then removed, never delivered nor quarantined. */
  private removeCalibration(inc: Incoming, outcome: { whole: boolean; error?: string }): void {
    const m = inc.manifest;
    this.incoming.delete(m.id);
    inc.part.close();
    rmSync(inc.dir, { recursive: true, force: true });
    this.markDone(m, 'calibration');
    this.calibration?.finished(m, outcome);
  }

  private quarantine(inc: Incoming, error: string): void {
    const m = inc.manifest;
    if (m.calibration) {
      this.removeCalibration(inc, { whole: false, error });
      return;
    }
    this.incoming.delete(m.id);
    inc.part.close();
    this.releaseReserve();
    const dest = this.quarantineDir(m);
    const record = {
      error,
      manifest: m,
      receivedChunks: inc.count,
      missing: missingRanges(inc.have, m),
      at: new Date().toISOString(),
    };
    try {
      rmSync(dest, { recursive: true, force: true });
      renameSync(inc.dir, dest);
      writeFileAtomic(join(dest, 'error.json'), `${JSON.stringify(record, null, 2)}\n`);
    } catch (err) {
      log.error({ id: m.id, err }, 'cannot write the quarantine record');
    }
    this.markDone(m, 'quarantined');
    this.counters.quarantined++;
    this.audit.write('file-quarantined', { ...m, error, receivedChunks: inc.count, path: dest });
    log.warn({ id: m.id, name: m.name, error, path: dest }, 'file quarantined: not delivered');
  }

  /** A file refused at its manifest: a quarantine record with everything missing. */
  private refuse(m: Manifest, error: string): void {
    if (m.calibration) {
      this.markDone(m, 'calibration');
      this.calibration?.finished(m, { whole: false, error });
      return;
    }
    this.releaseReserve();
    const dest = this.quarantineDir(m);
    try {
      mkdirSync(dest, { recursive: true });
      writeFileAtomic(
        join(dest, 'error.json'),
        `${JSON.stringify({ error, manifest: m, receivedChunks: 0, missing: [[0, m.size]], at: new Date().toISOString() }, null, 2)}\n`,
      );
    } catch (err) {
      log.error({ id: m.id, err }, 'cannot write the quarantine record');
    }
    this.markDone(m, 'refused');
    this.counters.quarantined++;
    this.audit.write('file-refused', { ...m, error });
    log.warn({ id: m.id, name: m.name, error }, 'file refused');
  }

  /** `<quarantine>/<id>-<name>`, within 255 bytes. */
  private quarantineDir(m: Manifest): string {
    const prefix = `${m.id}-`;
    return join(this.dirs.quarantine, `${prefix}${safeName(m.name, prefix.length)}`);
  }

  private markDone(m: Manifest, outcome: string): void {
    const entry = { identity: identity(m), at: Date.now() };
    this.done.set(m.id, entry);
    try {
      writeFileSync(join(this.dirs.done, String(m.id)), JSON.stringify({ ...entry, outcome }));
    } catch {
      // kept in memory; a restart may see the file again and refuse it again
    }
  }

  private forgetDone(id: number): void {
    this.done.delete(id);
    rmSync(join(this.dirs.done, String(id)), { force: true });
  }

  /**
   * Reads done/: an entry is JSON {identity, at, outcome}; one from before issue 16 (a bare
   * outcome) matches any file of its id, aged by its mtime; an empty or unreadable one (a
   * power cut) is dropped — at worst a later round delivers the file once more, under a new name.
   */
  private loadDone(): void {
    for (const name of readdirSync(this.dirs.done)) {
      const id = Number(name);
      const file = join(this.dirs.done, name);
      let text = '';
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      if (/^(delivered|quarantined|refused)$/.test(text)) {
        this.done.set(id, { identity: undefined, at: statSync(file).mtimeMs });
        continue;
      }
      try {
        const e = JSON.parse(text) as DoneEntry;
        if (typeof e.identity === 'string' && Number.isFinite(e.at)) {
          this.done.set(id, { identity: e.identity, at: e.at });
          continue;
        }
      } catch {
        // below
      }
      rmSync(file, { force: true });
    }
    this.pruneDone(Date.now());
  }

  /** Forgets files seen to their end longer ago than rememberDoneMs. */
  private pruneDone(now: number): void {
    for (const [id, e] of this.done) if (now - e.at > this.config.rememberDoneMs) this.forgetDone(id);
  }

  private freeBytes(): number {
    const s = statfsSync(this.config.spool);
    return Number(s.bavail) * Number(s.bsize);
  }

  private makeReserve(): void {
    if (existsSync(this.dirs.reserve) || this.config.reserveBytes === 0) return;
    try {
      if (this.freeBytes() < 4 * this.config.reserveBytes) return;
      writeFileSync(this.dirs.reserve, Buffer.alloc(this.config.reserveBytes));
    } catch {
      rmSync(this.dirs.reserve, { force: true });
    }
  }

  private releaseReserve(): void {
    try {
      unlinkSync(this.dirs.reserve);
    } catch {
      // none
    }
  }
}
