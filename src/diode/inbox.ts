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
 * `have.bitmap` (which chunks are on disk) is saved every second after an fdatasync of the
 * data, so it never claims a chunk the disk does not hold: a receiver killed and restarted
 * picks up where it was and completes from the rest of the round or a later one. The spool
 * must be on the inbox's filesystem (the rename), by default `<inbox>/.tacmesh`.
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
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statfsSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { log } from '../shared/log.js';
import type { AuditLog } from './audit.js';
import { decodeEnd, decodeManifest, type ManifestPayload } from './files.js';
import { type Frame, FrameType } from './frame.js';
import { PrefixHash } from './prefix-hash.js';
import { fsyncPath, isDiskFull, type Manifest, sha256File, writeAtomic } from './spool.js';

export interface InboxConfig {
  inbox: string;
  spool: string;
  incompleteAfterMs: number;
  maxFileBytes: number;
  /** Bytes kept free (a reserve file) so an error record can still be written on a full disk. */
  reserveBytes: number;
  persistEveryMs: number;
}

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
}

interface Incoming {
  manifest: Manifest;
  dir: string;
  fd: number;
  have: Uint8Array;
  count: number;
  dirty: boolean;
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

/** A file name safe to create in the inbox: no directories, no hidden or special names. */
export function safeName(name: string): string {
  const base = name.split(/[/\\]/).pop() ?? '';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed
  const clean = base.replace(/[\u0000-\u001f\u007f]/g, '_').slice(0, 255);
  if (!clean || clean === '.' || clean === '..') return '_';
  return clean.startsWith('.') ? `_${clean}` : clean;
}

/** True when the bitmap says chunk `i` is on disk. */
function hasChunk(have: Uint8Array, i: number): boolean {
  return (have[i >>> 3]! & (1 << (i & 7))) !== 0;
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

/** Chunk `index` of a file, read back from its part file. */
function readChunk(fd: number, m: Manifest, index: number): Buffer {
  const length = Math.min(m.chunkBytes, m.size - index * m.chunkBytes);
  const b = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, b, done, length - done, index * m.chunkBytes + done);
    if (n === 0) throw new Error(`chunk ${index} of ${m.name} is short on disk`);
    done += n;
  }
  return b;
}

/** Chunks of not-yet-announced files kept in memory, in all. */
const HELD_MAX_BYTES = 32 * 1024 * 1024;
const HELD_MAX_MS = 30_000;

export class FileReceiver {
  private readonly incoming = new Map<number, Incoming>();
  /** Chunks that arrived before their file's manifest (lost, and rebuilt by FEC a block later). */
  private readonly held = new Map<number, { since: number; frames: Frame[] }>();
  private heldBytes = 0;
  private readonly done = new Set<number>();
  private readonly dirs: { incoming: string; quarantine: string; done: string; reserve: string };
  private lastPersist = 0;
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
  };

  constructor(
    private readonly config: InboxConfig,
    private readonly audit: AuditLog,
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
    for (const id of readdirSync(this.dirs.done)) this.done.add(Number(id));
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
        this.incoming.set(manifest.id, {
          manifest,
          dir,
          fd,
          have,
          count,
          dirty: false,
          lastHeard: Date.now(),
          finalEnded: false,
          verifying: false,
        });
        log.info({ id: manifest.id, name: manifest.name, have: count, of: manifest.chunks }, 'file resumed');
        if (count === manifest.chunks) void this.finish(this.incoming.get(manifest.id)!);
      } catch (err) {
        log.warn({ dir, err: (err as Error).message }, 'an incoming file could not be resumed; removed');
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
      return;
    }
    this.counters.manifests++;
    const known = this.incoming.get(m.id);
    if (known) {
      known.lastHeard = Date.now();
      if (known.manifest.sha256 !== m.sha256 || known.manifest.size !== m.size) this.counters.badManifests++;
      return;
    }
    if (this.done.has(m.id)) return;
    const manifest: Manifest = {
      id: m.id,
      name: m.name,
      size: m.size,
      sha256: m.sha256,
      senderTime: m.senderTime,
      chunkBytes: m.chunkBytes,
      chunks: m.chunks,
    };
    if (m.size > this.config.maxFileBytes) {
      this.refuse(manifest, `larger than files.maxFileBytes (${this.config.maxFileBytes})`);
      return;
    }
    const free = this.freeBytes();
    if (free < m.size + this.config.reserveBytes) {
      this.counters.refusedDiskFull++;
      this.refuse(manifest, `disk full: ${m.size} bytes needed, ${free} free in ${this.config.spool}`);
      return;
    }
    this.open(manifest, m);
  }

  private open(manifest: Manifest, m: ManifestPayload): void {
    const dir = join(this.dirs.incoming, String(m.id));
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeAtomic(join(dir, 'manifest.json'), JSON.stringify(manifest));
      const fd = openSync(join(dir, 'data.part'), 'w+', 0o600);
      this.incoming.set(m.id, {
        manifest,
        dir,
        fd,
        have: new Uint8Array(Math.ceil(m.chunks / 8)),
        count: 0,
        dirty: false,
        lastHeard: Date.now(),
        finalEnded: false,
        verifying: false,
        hash: new PrefixHash(m.chunks, (i) => readChunk(fd, manifest, i)),
      });
      this.audit.write('file-receiving', {
        id: m.id,
        name: m.name,
        size: m.size,
        sha256: m.sha256,
        round: m.round,
      });
      log.info({ id: m.id, name: m.name, size: m.size, round: m.round }, 'file incoming');
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
      this.heldBytes -= f.payload.length;
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
    try {
      let done = 0;
      while (done < frame.payload.length)
        done += writeSync(inc.fd, frame.payload, done, frame.payload.length - done, i * m.chunkBytes + done);
    } catch (err) {
      this.quarantine(
        inc,
        isDiskFull(err) ? `disk full while writing: ${(err as Error).message}` : (err as Error).message,
      );
      return;
    }
    inc.have[i >>> 3]! |= 1 << (i & 7);
    try {
      inc.hash?.add(i, frame.payload, (j) => hasChunk(inc.have, j));
    } catch (err) {
      // Reading back an early chunk failed: the file is hashed in full at the end instead.
      inc.hash = undefined;
      log.warn({ id: m.id, err: (err as Error).message }, 'cannot hash the file as it arrives');
    }
    inc.count++;
    inc.dirty = true;
    this.counters.chunks++;
    if (inc.count === m.chunks) void this.finish(inc);
  }

  /** Keeps a chunk whose manifest has not come (yet), within a memory budget. */
  private hold(frame: Frame): void {
    if (this.heldBytes + frame.payload.length > HELD_MAX_BYTES) {
      this.counters.withoutManifest++;
      return;
    }
    let h = this.held.get(frame.session);
    if (!h) {
      h = { since: Date.now(), frames: [] };
      this.held.set(frame.session, h);
    }
    h.frames.push({ ...frame, payload: Buffer.from(frame.payload) });
    this.heldBytes += frame.payload.length;
    this.counters.heldBeforeManifest++;
  }

  /** Saves chunk maps, quarantines files that can no longer complete; every 100 ms. */
  tick(): void {
    const now = Date.now();
    for (const [id, h] of this.held) {
      if (now - h.since < HELD_MAX_MS) continue;
      this.held.delete(id);
      for (const f of h.frames) this.heldBytes -= f.payload.length;
      this.counters.withoutManifest += h.frames.length;
    }
    if (now - this.lastPersist >= this.config.persistEveryMs) {
      this.lastPersist = now;
      for (const inc of this.incoming.values()) if (inc.dirty && !inc.verifying) this.persist(inc);
      this.makeReserve();
    }
    for (const inc of this.incoming.values()) {
      if (inc.verifying) continue;
      const idle = now - inc.lastHeard;
      if (inc.finalEnded && idle > 2000) this.quarantine(inc, 'incomplete after the final round');
      else if (idle > this.config.incompleteAfterMs)
        this.quarantine(inc, `incomplete: nothing heard for ${this.config.incompleteAfterMs} ms`);
    }
  }

  stop(): void {
    for (const inc of this.incoming.values()) {
      if (inc.dirty && !inc.verifying) this.persist(inc);
      if (!inc.verifying) closeSync(inc.fd);
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

  private persist(inc: Incoming): void {
    try {
      fdatasyncSync(inc.fd);
      writeAtomic(join(inc.dir, 'have.bitmap'), Buffer.from(inc.have));
      inc.dirty = false;
    } catch (err) {
      if (isDiskFull(err)) this.quarantine(inc, `disk full while saving progress: ${(err as Error).message}`);
      else log.warn({ id: inc.manifest.id, err: (err as Error).message }, 'cannot save file progress');
    }
  }

  private async finish(inc: Incoming): Promise<void> {
    inc.verifying = true;
    const m = inc.manifest;
    const part = join(inc.dir, 'data.part');
    try {
      fsyncSync(inc.fd);
      closeSync(inc.fd);
      const sha = inc.hash?.digest() ?? (await sha256File(part));
      if (sha !== m.sha256) {
        this.quarantine(inc, `SHA-256 mismatch: got ${sha}, the manifest says ${m.sha256}`, true);
        return;
      }
      let target = join(this.config.inbox, safeName(m.name));
      if (existsSync(target)) target = join(this.config.inbox, `${safeName(m.name)}.${m.id}`);
      renameSync(part, target);
      fsyncPath(this.config.inbox);
      this.markDone(m.id, 'delivered');
      rmSync(inc.dir, { recursive: true, force: true });
      this.incoming.delete(m.id);
      this.counters.delivered++;
      this.counters.deliveredBytes += m.size;
      this.audit.write('file-received', { ...m, path: target });
      log.info({ id: m.id, name: m.name, size: m.size, path: target }, 'file delivered');
    } catch (err) {
      this.quarantine(inc, `cannot deliver: ${(err as Error).message}`, true);
    }
  }

  private quarantine(inc: Incoming, error: string, closed = false): void {
    const m = inc.manifest;
    this.incoming.delete(m.id);
    if (!closed) {
      try {
        closeSync(inc.fd);
      } catch {
        // already closed
      }
    }
    this.releaseReserve();
    const dest = join(this.dirs.quarantine, `${m.id}-${safeName(m.name)}`);
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
      writeAtomic(join(dest, 'error.json'), `${JSON.stringify(record, null, 2)}\n`);
    } catch (err) {
      log.error({ id: m.id, err: (err as Error).message }, 'cannot write the quarantine record');
    }
    this.markDone(m.id, 'quarantined');
    this.counters.quarantined++;
    this.audit.write('file-quarantined', { ...m, error, receivedChunks: inc.count, path: dest });
    log.warn({ id: m.id, name: m.name, error, path: dest }, 'file quarantined: not delivered');
  }

  /** A file refused at its manifest: a quarantine record with everything missing. */
  private refuse(m: Manifest, error: string): void {
    this.releaseReserve();
    const dest = join(this.dirs.quarantine, `${m.id}-${safeName(m.name)}`);
    try {
      mkdirSync(dest, { recursive: true });
      writeAtomic(
        join(dest, 'error.json'),
        `${JSON.stringify({ error, manifest: m, receivedChunks: 0, missing: [[0, m.size]], at: new Date().toISOString() }, null, 2)}\n`,
      );
    } catch (err) {
      log.error({ id: m.id, err: (err as Error).message }, 'cannot write the quarantine record');
    }
    this.markDone(m.id, 'refused');
    this.counters.quarantined++;
    this.audit.write('file-refused', { ...m, error });
    log.warn({ id: m.id, name: m.name, error }, 'file refused');
  }

  private markDone(id: number, outcome: string): void {
    this.done.add(id);
    try {
      writeFileSync(join(this.dirs.done, String(id)), outcome);
    } catch {
      // kept in memory; a restart may see the file again and refuse it again
    }
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
