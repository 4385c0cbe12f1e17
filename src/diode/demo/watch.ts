/**
 * What the demo's screen and report show, read from what each process leaves on disk: the
 * sender's and receiver's stats files and audit logs, the traffic tools' counters, the
 * inbox — the same files `tacmesh diode status` reads — plus the link's kernel counters.
 * Rates and the receiver's loss are taken over a few seconds of samples.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { LinkEmulator } from '../../netlab/linkem.js';
import { readAudit } from '../audit.js';
import { sha256File } from '../disk.js';
import { readStats } from '../status.js';
import type { DemoState } from './demo.js';

type LinkCounters = ReturnType<LinkEmulator['counts']>;

// biome-ignore lint/suspicious/noExplicitAny: the stats files are JSON written by the other processes
type Json = any;

export type FileState = 'sending' | 'receiving' | 'complete' | 'incomplete' | 'quarantined' | 'differs';

export interface FileView {
  id: number;
  name: string;
  size: number;
  sha256: string;
  /** The sender's current round: fraction handed to the link, round number, rate (bytes/s). */
  send: { fraction: number; round: number; roundsDone: number; rate: number } | null;
  /** The receiver's share of chunks, while the file is incoming. */
  recv: { fraction: number } | null;
  state: FileState;
  /** Where it landed in the inbox, and whether the demo's own hash of it matched the sender's. */
  path?: string;
  identical?: boolean;
  /** Why it is in quarantine. */
  error?: string;
}

export interface Snapshot {
  at: number;
  link: {
    set: DemoState['link'];
    fec: DemoState['fec'];
    /** The receiving end's kernel counters: what passed and was lost forward, what was dropped going back. */
    forward: { passed: number; dropped: number; bursts: number };
    backward: { passed: number; dropped: number };
  };
  sender: {
    running: boolean;
    pacedMbit: number;
    frames: number;
    copies: number;
    repairs: number;
    fecBlocks: number;
    datagrams: number;
    /** What it put on the wire over the last few seconds (Mbit/s, Ethernet frames). */
    rateMbit: number;
    udpDropped: number;
    unexpectedInbound: number;
  } | null;
  receiver: {
    running: boolean;
    alive: boolean;
    heartbeats: number;
    lastHeartbeatAgoMs: number | null;
    /** What arrived, Mbit/s over the last few seconds. */
    rateMbit: number;
    /** Datagram loss over the last few seconds and since the sender's epoch began (from heartbeats). */
    lossRecent: number | null;
    lossTotal: number | null;
    frames: number;
    duplicates: number;
    lostFrames: number;
    fec: {
      blocks: number;
      intact: number;
      repaired: number;
      failed: number;
      recovered: number;
      minSpare: number | null;
    };
    authFailures: number;
    rejected: number;
  } | null;
  files: FileView[];
  tcp: {
    sessionsSent: number;
    linesSent: number;
    linesDelivered: number;
    connections: number;
    complete: number;
    reset: number;
    again: number;
    gaps: number;
    abortReasons: Record<string, number>;
  };
  udp: { sent: number; delivered: number; again: number };
}

function readJson(file: string): Json | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function audit(file: string): Json[] {
  return existsSync(file) ? readAudit(readFileSync(file, 'utf8')) : [];
}

const sum = (o: Record<string, number> | undefined) => Object.values(o ?? {}).reduce((a, b) => a + b, 0);

interface Sample {
  at: number;
  /** Bytes that reached the receiving end of the link, lost there or not: what the sender put on the wire. */
  wireBytes: number;
  recvBytes: number;
  hbSent: number;
  hbReceived: number;
}

/** Rates over this many ms of samples. */
const WINDOW_MS = 3000;

export class DemoWatch {
  private samples: Sample[] = [];
  /** The demo's own hash of each inbox file, by path (hashed once, in the background). */
  private readonly hashes = new Map<string, string | null>();
  private readonly hashing = new Map<string, Promise<unknown>>();
  private readonly counts = new Map<string, { base: number; last: number }>();

  constructor(private readonly state: () => DemoState) {}

  snapshot(counters?: { forward: LinkCounters; backward: LinkCounters }): Snapshot {
    const state = this.state();
    const p = state.paths;
    const send = readStats(p.sendStats);
    const recv = readStats(p.recvStats);
    const sendOk = !!send && send.ageMs < 3000 && state.pids['diode-send'] !== undefined;
    const recvOk = !!recv && recv.ageMs < 3000 && state.pids['diode-recv'] !== undefined;
    const s: Json = send?.stats;
    const r: Json = recv?.stats;
    const now = Date.now();
    const sample: Sample = {
      at: now,
      wireBytes: Number((counters?.forward.passedBytes ?? 0n) + (counters?.forward.droppedBytes ?? 0n)),
      recvBytes: r?.link.bytes ?? 0,
      hbSent: r?.link.health.datagramsSent ?? 0,
      hbReceived: r?.link.health.datagramsReceived ?? 0,
    };
    // A restart (new epoch, counters from 0) starts the window afresh.
    const last = this.samples[this.samples.length - 1];
    if (last && (sample.recvBytes < last.recvBytes || sample.hbSent < last.hbSent)) {
      this.samples = this.samples.map((x) => ({ ...x, recvBytes: 0, hbSent: 0, hbReceived: 0 }));
    }
    this.samples.push(sample);
    this.samples = this.samples.filter((x) => now - x.at <= WINDOW_MS);
    const first = this.samples[0] ?? sample;
    const secs = Math.max(0.001, (now - first.at) / 1000);
    const mbit = (bytes: number) => (bytes * 8) / secs / 1e6;
    const hbSent = sample.hbSent - first.hbSent;
    const hbGot = sample.hbReceived - first.hbReceived;
    return {
      at: now,
      link: {
        set: state.link,
        fec: state.fec,
        forward: {
          passed: Number(counters?.forward.passedPackets ?? 0n),
          dropped: Number(counters?.forward.droppedPackets ?? 0n),
          bursts: Number(counters?.forward.bursts ?? 0n),
        },
        backward: {
          passed: Number(counters?.backward.passedPackets ?? 0n),
          dropped: Number(counters?.backward.droppedPackets ?? 0n),
        },
      },
      sender: s
        ? {
            running: sendOk,
            pacedMbit: s.link.rateMbit,
            frames: s.link.frames,
            copies: s.link.copiesSent,
            repairs: s.link.repairFrames,
            fecBlocks: s.link.fec?.blocks ?? 0,
            datagrams: s.link.datagramsSent,
            rateMbit: mbit(sample.wireBytes - first.wireBytes),
            udpDropped: (s.udp.droppedBufferFull ?? 0) + (s.udp.droppedTooLong ?? 0),
            unexpectedInbound: s.link.unexpectedInbound,
          }
        : null,
      receiver: r
        ? {
            running: recvOk,
            alive: recvOk && r.link.health.alive,
            heartbeats: this.total('heartbeats', r.link.health.heartbeats),
            lastHeartbeatAgoMs: r.link.health.lastHeartbeatAgoMs ?? null,
            rateMbit: recvOk ? mbit(sample.recvBytes - first.recvBytes) : 0,
            lossRecent: hbSent > 0 ? Math.max(0, 1 - hbGot / hbSent) : null,
            lossTotal: r.link.health.datagramLoss ?? null,
            frames: this.total('frames', r.link.frames),
            duplicates: this.total('duplicates', r.link.duplicates),
            lostFrames: this.total('lostFrames', r.link.lostFrames),
            fec: {
              blocks: this.total('blocks', r.link.fec.blocks),
              intact: this.total('intact', r.link.fec.intact),
              repaired: this.total('repaired', r.link.fec.repaired),
              failed: this.total('failed', r.link.fec.failed),
              recovered: this.total('recovered', r.link.fec.framesRecovered),
              minSpare: r.link.fec.minSpare ?? null,
            },
            authFailures: this.total('authFailures', sum(r.link.auth)),
            rejected: this.total('rejected', sum(r.link.rejected)),
          }
        : null,
      files: this.files(state, s, r),
      tcp: this.tcp(state, r),
      udp: this.udp(state),
    };
  }

  private files(state: DemoState, s: Json, r: Json): FileView[] {
    const p = state.paths;
    const sendEvents = audit(p.sendAudit);
    const sent = sendEvents.filter((e) => e.event === 'file-accepted');
    const done = new Set(sendEvents.filter((e) => e.event === 'file-sent').map((e) => e.id));
    const received = audit(p.recvAudit).filter((e) => e.event === 'file-received');
    const quarantined = audit(p.recvAudit).filter((e) => e.event === 'file-quarantined');
    const progress: Json[] = s?.files?.spool ?? [];
    const incoming: Json[] = r?.files?.incoming ?? [];
    return sent.map((e: Json): FileView => {
      const base = { id: e.id, name: e.name, size: e.size, sha256: e.sha256 };
      const got = received.find((x) => x.id === e.id && x.sha256 === e.sha256);
      const q = quarantined.filter((x) => x.id === e.id).pop();
      const sp = progress.find((x) => x.id === e.id);
      const inc = incoming.find((x) => x.id === e.id);
      const send = sp
        ? {
            fraction: sp.size > 0 ? Math.min(1, sp.roundBytes / sp.size) : 1,
            round: sp.round,
            roundsDone: sp.roundsDone,
            rate: sp.rate,
          }
        : null;
      const recv = inc ? { fraction: inc.chunks > 0 ? inc.receivedChunks / inc.chunks : 1 } : null;
      const hash = got ? this.hashOf(String(got.path)) : undefined;
      if (got && hash !== undefined) {
        const identical = hash === e.sha256;
        return {
          ...base,
          send,
          recv: null,
          state: identical ? 'complete' : 'differs',
          path: got.path,
          identical,
        };
      }
      // In the inbox, not checked yet: shown as arrived in full.
      if (got) return { ...base, send, recv: { fraction: 1 }, state: 'receiving' };
      if (inc) return { ...base, send, recv, state: 'receiving' };
      if (q) return { ...base, send, recv: null, state: 'quarantined', error: String(q.error) };
      // Not known at the receiver: still on its way, or every round has left without it.
      return { ...base, send, recv: null, state: done.has(e.id) ? 'incomplete' : 'sending' };
    });
  }

  /**
   * A receiver counter summed over the receiver's restarts: a restarted receiver counts from
   * 0 again, so a value below the last one starts a new run on top of the old.
   */
  private total(name: string, value: number): number {
    const last = this.counts.get(name) ?? { base: 0, last: 0 };
    if (value < last.last) last.base += last.last;
    last.last = value;
    this.counts.set(name, last);
    return last.base + value;
  }

  /** The file's SHA-256 once hashed (null: it could not be read), undefined meanwhile. */
  private hashOf(path: string): string | null | undefined {
    if (!this.hashes.has(path) && !this.hashing.has(path)) {
      const job = sha256File(path).then(
        (h) => this.hashes.set(path, h),
        () => this.hashes.set(path, null),
      );
      this.hashing.set(
        path,
        job.finally(() => this.hashing.delete(path)),
      );
    }
    return this.hashes.get(path);
  }

  /** Resolves once every hash started has its result. */
  async settled(): Promise<void> {
    await Promise.all(this.hashing.values());
  }

  private tcp(state: DemoState, r: Json): Snapshot['tcp'] {
    const source = readJson(state.paths.tools.logSource) ?? {};
    const sink = readJson(state.paths.tools.logSink) ?? {};
    return {
      sessionsSent: source.sessionsClosed ?? 0,
      linesSent: source.lines ?? 0,
      linesDelivered: sink.lines ?? 0,
      connections: sink.connections ?? 0,
      complete: sink.complete ?? 0,
      reset: sink.reset ?? 0,
      again: sink.again ?? 0,
      gaps: sink.gaps ?? 0,
      abortReasons: r?.tcp.abortReasons ?? {},
    };
  }

  private udp(state: DemoState): Snapshot['udp'] {
    const source = readJson(state.paths.tools.udpSource) ?? {};
    const sink = readJson(state.paths.tools.udpSink) ?? {};
    return { sent: source.sent ?? 0, delivered: sink.unique ?? 0, again: sink.again ?? 0 };
  }
}
