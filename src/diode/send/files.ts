/**
 * Files across the diode, sender side: the spooled files (spool.ts) go out round by round
 * (carousel.ts) as frames of their own types, sharing the aggregator (and its FEC, copies,
 * pacing and back-pressure) with TCP and UDP:
 *
 *   manifest  session = transfer id, seq = round; payload = the manifest as JSON plus the
 *             round; at the start of each round and every `manifestEvery` chunks, so a
 *             receiver that starts mid-round learns the file at once
 *   data      session = transfer id, seq = chunk index; payload = the chunk
 *   end       session = transfer id, seq = round; payload = {round, final}
 *
 * Where sending got to is saved every second (progress.json), one save behind what was
 * handed to the aggregator, so a sender killed and restarted resumes the round it was in
 * without a gap. The receiving side is inbox.ts.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import { diodeLog as log } from '../../shared/log.js';
import type { AuditLog } from '../audit.js';
import { encodeEnd, encodeManifest } from '../protocol/file-frames.js';
import { FrameType, Importance } from '../protocol/frame.js';
import type { Aggregator } from './aggregator.js';
import type { Carousel } from './carousel.js';
import { Doorbell, PacedSubmitter } from './paced-submit.js';
import type { FileSpool, SpooledFile } from './spool.js';

export interface FileProgress {
  id: number;
  name: string;
  size: number;
  sha256: string;
  round: number;
  roundsDone: number;
  /** Bytes of the current round handed to the link. */
  roundBytes: number;
  /** Bytes per second over the current round. */
  rate: number;
}

export interface FileSenderCounters {
  accepted: number;
  rounds: number;
  sent: number;
  refused: number;
  bytes: number;
}

const READ_BYTES = 1 << 20;

export class FileSender {
  private running = false;
  private stopped = false;
  private readonly submitter: PacedSubmitter;
  private readonly doorbell = new Doorbell();
  private current: { file: SpooledFile; roundBytes: number; started: number } | undefined;
  readonly counters: FileSenderCounters = { accepted: 0, rounds: 0, sent: 0, refused: 0, bytes: 0 };

  constructor(
    private readonly aggregator: Aggregator,
    private readonly spool: FileSpool,
    private readonly carousel: Carousel,
    private readonly audit: AuditLog,
    private readonly options: { manifestEvery: number; progressEveryMs: number },
  ) {
    this.submitter = new PacedSubmitter(aggregator, () => this.stopped);
  }

  /** Starts the sending loop (resuming what the spool holds). */
  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop().catch((err) => log.error({ err }, 'file sender stopped'));
  }

  /** Something new is in the spool. */
  kick(): void {
    this.doorbell.wake();
  }

  stop(): void {
    this.stopped = true;
    this.doorbell.wake();
  }

  progress(): FileProgress[] {
    return this.spool.list().map((f) => {
      const cur = this.current?.file.manifest.id === f.manifest.id ? this.current : undefined;
      const seconds = cur ? (performance.now() - cur.started) / 1000 : 0;
      const roundBytes = cur
        ? cur.roundBytes
        : Math.min(f.manifest.size, f.progress.nextChunk * f.manifest.chunkBytes);
      return {
        id: f.manifest.id,
        name: f.manifest.name,
        size: f.manifest.size,
        sha256: f.manifest.sha256,
        round: f.progress.roundsDone + 1,
        roundsDone: f.progress.roundsDone,
        roundBytes,
        rate: cur && seconds > 0 ? cur.roundBytes / seconds : 0,
      };
    });
  }

  /**
   * Round after round until stopped. A file that fails (its data short or unreadable) is
   * quarantined in the spool and the loop goes on with the others.
   */
  private async loop(): Promise<void> {
    while (!this.stopped) {
      const file = this.carousel.pick(this.spool.list());
      if (!file) {
        await this.doorbell.wait(100);
        continue;
      }
      try {
        await this.round(file);
      } catch (err) {
        this.current = undefined;
        this.spool.tryQuarantine(basename(file.dir), `cannot be sent: ${(err as Error).message}`);
      }
    }
  }

  /** Sends one round of `file` from where its progress says. */
  private async round(file: SpooledFile): Promise<void> {
    const m = file.manifest;
    const p = file.progress;
    const round = p.roundsDone;
    if (p.startedAt === null) p.startedAt = Date.now();
    if (round === 0 && p.nextChunk === 0)
      this.audit.write('file-sending', { id: m.id, name: m.name, size: m.size, sha256: m.sha256 });
    const startChunk = p.nextChunk;
    this.current = { file, roundBytes: startChunk * m.chunkBytes, started: performance.now() };
    const manifest = encodeManifest({ ...m, round });
    await this.send(FrameType.FileManifest, m.id, round, manifest);
    const fd = openSync(file.data, 'r');
    let lastSaved = performance.now();
    // What goes to disk as progress is where sending was one save earlier: a chunk handed to
    // the aggregator may still wait in its FEC block or the pacer, and a sender killed then
    // must send it again after the restart. Everything below `safe` was handed over at least
    // one save interval ago, and so has left.
    let safe = startChunk;
    try {
      const readBytes = Math.max(READ_BYTES - (READ_BYTES % m.chunkBytes), m.chunkBytes);
      let chunk = startChunk;
      while (chunk < m.chunks && !this.stopped) {
        // A fresh buffer per read: queued frames still point into the previous one.
        const buf = Buffer.allocUnsafe(readBytes);
        const n = m.size === 0 ? 0 : readSync(fd, buf, 0, buf.length, chunk * m.chunkBytes);
        if (m.size > 0 && n === 0) throw new Error(`${file.data} is shorter than its manifest`);
        const pieces = Math.max(1, Math.ceil(n / m.chunkBytes));
        for (let i = 0; i < pieces; i++) {
          const piece = buf.subarray(i * m.chunkBytes, Math.min(n, (i + 1) * m.chunkBytes));
          await this.send(FrameType.FileData, m.id, chunk, piece);
          this.current.roundBytes += piece.length;
          this.counters.bytes += piece.length;
          chunk++;
          if (chunk % this.options.manifestEvery === 0)
            await this.send(FrameType.FileManifest, m.id, round, manifest);
        }
        if (performance.now() - lastSaved > this.options.progressEveryMs) {
          p.nextChunk = safe;
          this.spool.saveProgressLater(file);
          safe = chunk;
          lastSaved = performance.now();
        }
        p.nextChunk = chunk;
      }
      if (this.stopped) {
        p.nextChunk = safe;
        await this.spool.progressSaved(file);
        this.spool.saveProgress(file);
        return;
      }
    } finally {
      closeSync(fd);
    }
    await this.spool.progressSaved(file);
    p.roundsDone++;
    p.nextChunk = 0;
    const final = this.carousel.finished(p);
    await this.send(FrameType.FileEnd, m.id, round, encodeEnd({ round, final }));
    this.counters.rounds++;
    this.current = undefined;
    if (final) {
      // Everything of the last round has left before the spool lets go of the file.
      await this.aggregator.flushed();
      this.spool.remove(file);
      this.counters.sent++;
      this.audit.write('file-sent', {
        id: m.id,
        name: m.name,
        size: m.size,
        sha256: m.sha256,
        rounds: p.roundsDone,
      });
      log.info({ id: m.id, name: m.name, rounds: p.roundsDone }, 'file sent');
    } else this.spool.saveProgress(file);
  }

  /** Submits a frame, waiting while the aggregator's buffer is full. */
  private send(type: FrameType, session: number, seq: number, payload: Buffer): Promise<void> {
    return this.submitter.submit({ type, importance: Importance.High, session, seq, payload });
  }
}
