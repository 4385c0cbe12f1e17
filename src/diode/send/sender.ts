/**
 * The RED transmission system: TCP destination proxy, UDP capture and the file sender feed
 * the aggregator, which signs frames, adds FEC repairs, paces frames and their copies onto
 * the one-way link; heartbeats once a second carry the sender's counters. The link socket
 * is connected to the receiver and only ever sends.
 *
 * The epoch is the start time in seconds, kept on disk so it always grows (a receiver with
 * auth refuses an epoch older than the newest it has seen: replays of old traffic).
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { diodeLog as log } from '../../shared/log.js';
import { fdOf } from '../../shared/socket-options.js';
import { started } from '../../shared/started.js';
import { AuditLog } from '../audit.js';
import { calibrationWarning } from '../calibration-record.js';
import type { SendConfig } from '../config.js';
import { duBytes } from '../disk.js';
import { byLabel, type MetricDef, Metrics, one } from '../metrics.js';
import { privateDir } from '../private-dir.js';
import { KeyRing } from '../protocol/auth.js';
import { codeFor } from '../protocol/fec-code.js';
import type { CalibrationStep, Manifest } from '../protocol/file-frames.js';
import { FrameType, Importance } from '../protocol/frame.js';
import { encodeHeartbeat } from '../protocol/heartbeat.js';
import { StatsFile } from '../stats-file.js';
import { Aggregator } from './aggregator.js';
import { Carousel } from './carousel.js';
import { CopyPolicy } from './copies.js';
import { FileSender } from './files.js';
import { LinkWriter } from './link-writer.js';
import { Outbox } from './outbox.js';
import { SessionRounds } from './session-rounds.js';
import { type AcceptedSession, SessionStore } from './session-store.js';
import { FileSpool } from './spool.js';
import { TcpDestinationProxy } from './tcp-destination-proxy.js';
import { UdpCapture } from './udp-capture.js';

const importanceOf = (i: 'high' | 'low') => (i === 'high' ? Importance.High : Importance.Low);

/**
 * A new epoch: the time in seconds, above the last one this spool used (written durably
 * before it is used). An empty or unreadable epoch file (a power cut on a filesystem that
 * lost the write) falls back on the clock alone, with a warning.
 */
export function nextEpoch(dir: string): number {
  privateDir(dir, 'store.dir');
  const file = join(dir, 'epoch');
  let last = 0;
  try {
    const text = readFileSync(file, 'utf8').trim();
    if (/^\d+$/.test(text)) last = Number(text);
    else log.warn({ file }, 'the epoch file is unreadable: the new epoch is from the clock alone');
  } catch {
    // first start
  }
  const epoch = Math.max(Math.floor(Date.now() / 1000), last + 1);
  if (epoch >= 2 ** 32) throw new Error(`${file}: epoch ${epoch} is past 2^32`);
  writeFileAtomic(file, `${epoch}\n`);
  return epoch;
}

type SenderStats = ReturnType<Sender['stats']>;

const counter = (name: string, help: string, value: (s: SenderStats) => number): MetricDef<SenderStats> => ({
  name,
  help,
  type: 'counter',
  samples: (s) => one(value(s)),
});

const SENDER_METRICS: MetricDef<SenderStats>[] = [
  {
    name: 'frames_total',
    help: 'frames sent (originals)',
    type: 'counter',
    samples: (s) => one(s.link.frames),
  },
  {
    name: 'copies_total',
    help: 'extra copies sent',
    type: 'counter',
    samples: (s) => one(s.link.copiesSent),
  },
  {
    name: 'repairs_total',
    help: 'FEC repair frames sent',
    type: 'counter',
    samples: (s) => one(s.link.repairFrames),
  },
  {
    name: 'fec_blocks_total',
    help: 'FEC blocks encoded',
    type: 'counter',
    samples: (s) => one(s.link.fec?.blocks ?? 0),
  },
  counter(
    'datagrams_total',
    'datagrams handed to the link (originals, copies, repairs, heartbeats)',
    (s) => s.link.datagramsSent,
  ),
  counter('heartbeats_total', 'heartbeats sent', (s) => s.link.heartbeats),
  {
    ...counter('link_rate_mbit', 'the pacing rate, Mbit/s on the wire', (s) => s.link.rateMbit),
    type: 'gauge',
  },
  counter('send_errors_total', 'datagrams the link socket failed to send', (s) => s.link.sendErrors),
  counter(
    'unexpected_inbound_total',
    'datagrams that arrived on the link socket (a one-way link carries none: must stay 0)',
    (s) => s.link.unexpectedInbound,
  ),
  {
    name: 'udp_datagrams_total',
    help: 'UDP datagrams captured, by outcome',
    type: 'counter',
    labelNames: ['outcome'],
    samples: (s) =>
      byLabel('outcome', {
        received: s.udp.received,
        forwarded: s.udp.forwarded,
        dropped_buffer_full: s.udp.droppedBufferFull,
        dropped_too_long: s.udp.droppedTooLong,
      }),
  },
  {
    name: 'sessions_total',
    help: 'TCP sessions by state',
    type: 'counter',
    labelNames: ['state'],
    samples: (s) =>
      byLabel('state', {
        opened: s.tcp.opened,
        accepted: s.tcp.accepted,
        aborted: s.tcp.aborted,
        refused: s.tcp.refused,
        replayed: s.tcp.replayed,
        sent: s.tcp.sent,
      }),
  },
  {
    name: 'session_rounds_total',
    help: 'rounds of stored TCP sessions sent from the spool (carousel and replays)',
    type: 'counter',
    samples: (s) => one(s.tcp.rounds),
  },
  {
    name: 'files_total',
    help: 'files by state',
    type: 'counter',
    labelNames: ['state'],
    samples: (s) =>
      byLabel('state', { sent: s.files.sent, rounds: s.files.rounds, refused: s.files.refused }),
  },
  {
    name: 'spool_bytes',
    help: 'bytes in the spool (files and TCP sessions)',
    type: 'gauge',
    samples: (s) => one(s.files.spoolBytes),
  },
];

export class Sender {
  private readonly socket: Socket;
  /** sendmmsg on the socket once it is connected (link-writer.ts). */
  private writer: LinkWriter | undefined;
  private readonly aggregator: Aggregator;
  private readonly tcp: TcpDestinationProxy;
  private readonly rounds: SessionRounds | undefined;
  private readonly sessionStore: SessionStore | undefined;
  private readonly udp: UdpCapture;
  private readonly auth: KeyRing | undefined;
  private readonly spool: FileSpool;
  private readonly files: FileSender;
  private readonly outbox: Outbox | undefined;
  private readonly audit: AuditLog;
  private readonly metrics: Metrics<SenderStats> | undefined;
  private spoolBytes = 0;
  private sessionSpoolBytes = 0;
  private readonly started = Date.now();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private statsFile: StatsFile | undefined;
  private unexpectedInbound = 0;
  private heartbeats = 0;
  private sendErrors = 0;
  private nextSession = 1;
  /** The pacing rate now: link.rateMbit, as last (re)read. */
  private rateMbit: number;

  constructor(private readonly config: SendConfig) {
    this.rateMbit = config.link.rateMbit;
    const { link } = config;
    const epoch = nextEpoch(config.store.dir);
    this.audit = new AuditLog(config.audit.file, 'sender');
    if (config.auth) this.auth = new KeyRing(config.auth.keyFile, config.auth.keyId);
    const fec = config.fec?.enabled
      ? {
          code: codeFor(config.fec.code, config.fec.expectedLoss, config.fec.burstFrames),
          blockFrames: config.fec.blockFrames,
          maxDelayMs: config.fec.maxDelayMs,
          sizing: {
            loss: config.fec.expectedLoss,
            burst: config.fec.burstFrames,
            margin: config.fec.margin,
            failure: config.fec.failure,
          },
        }
      : undefined;
    this.socket = createSocket({ type: link.to.host.includes(':') ? 'udp6' : 'udp4' });
    // A one-way link carries nothing back; anything that does arrive is counted and ignored.
    this.socket.on('message', () => {
      this.unexpectedInbound++;
    });
    this.socket.on('error', (err) => {
      this.sendErrors++;
      log.warn({ err }, 'link socket error');
    });
    this.aggregator = new Aggregator({
      epoch,
      newEpoch: () => nextEpoch(config.store.dir),
      rateBitsPerSecond: link.rateMbit * 1e6,
      datagramBytes: link.datagramBytes,
      queueBytes: link.bufferBytes,
      copyPolicy: new CopyPolicy({ high: config.copies.high, low: config.copies.low }),
      everyMs: config.copies.everyMs,
      spreadMs: config.copies.spreadMs,
      send: (header, payload, tag) => {
        if (this.writer) this.writer.send(header, payload, tag);
        else this.socket.send(tag ? [header, payload, tag] : [header, payload]);
      },
      flush: () => this.writer?.flush(),
      socketBacklog: () => this.socket.getSendQueueSize() + (this.writer?.backlogBytes ?? 0),
      ...(link.burstMs ? { burstMs: link.burstMs } : {}),
      ...(this.auth ? { auth: this.auth } : {}),
      ...(fec ? { fec } : {}),
    });
    const newSessionId = () => this.nextSession++;
    if (config.store.enabled) {
      this.sessionStore = new SessionStore(join(config.store.dir, 'sessions'));
      this.rounds = new SessionRounds(this.aggregator, this.sessionStore, this.audit, {
        services: new Map(
          config.tcp.map((s) => [
            s.name,
            {
              importance: importanceOf(s.importance),
              carousel: { rounds: s.rounds, ...(s.durationS ? { durationMs: s.durationS * 1000 } : {}) },
            },
          ]),
        ),
        throughput: config.throughput,
        newSessionId,
      });
    }
    const rounds = this.rounds;
    this.tcp = new TcpDestinationProxy(this.aggregator, {
      epoch,
      services: config.tcp.map((s) => ({ ...s, importance: importanceOf(s.importance) })),
      throughput: config.throughput,
      ...(this.sessionStore && rounds
        ? { store: this.sessionStore, onAccepted: (a: AcceptedSession) => rounds.liveRoundQueued(a) }
        : {}),
      audit: this.audit,
      newSessionId,
    });
    this.udp = new UdpCapture(
      this.aggregator,
      config.udp.map((s) => ({ ...s, importance: importanceOf(s.importance) })),
      newSessionId,
    );
    this.spool = new FileSpool(config.store.dir, this.aggregator.maxPayload, (q) => {
      this.audit.write('file-quarantined', { ...q, from: 'spool' });
      log.error({ ...q }, 'spooled file quarantined (it cannot be sent); sending goes on');
    });
    const carousel = new Carousel({
      rounds: config.files.rounds,
      ...(config.files.durationS ? { durationMs: config.files.durationS * 1000 } : {}),
    });
    this.files = new FileSender(this.aggregator, this.spool, carousel, this.audit, {
      manifestEvery: config.files.manifestEvery,
      progressEveryMs: 1000,
    });
    if (config.files.outbox)
      this.outbox = new Outbox(config.files.outbox, this.spool, this.audit, () => this.files.kick());
    if (config.metrics.listen) this.metrics = new Metrics('sender', SENDER_METRICS, () => this.stats());
  }

  async start(): Promise<void> {
    const { link } = this.config;
    await started(this.socket, (done) =>
      this.socket.bind({ port: 0, ...(link.from ? { address: link.from } : {}) }, () =>
        this.socket.connect(link.to.port, link.to.host, done),
      ),
    );
    const fd = fdOf(this.socket);
    if (fd !== undefined) this.writer = new LinkWriter(fd, link.datagramBytes);
    await this.tcp.listen();
    await this.udp.listen();
    await this.spool.recover();
    this.rounds?.start();
    this.files.start();
    this.outbox?.start();
    if (this.config.metrics.listen) await this.metrics?.listen(this.config.metrics.listen);
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.config.heartbeat.everyMs);
    this.heartbeat();
    this.statsFile = new StatsFile(this.config.stats.file, this.config.stats.everyMs, () => this.stats());
    log.info({ epoch: this.epoch, to: link.to, rateMbit: link.rateMbit }, 'diode sender ready');
    this.checkCalibration();
  }

  /** Warns when the rate is above what the last calibration (link.calibration) sustained. */
  private checkCalibration(): void {
    const file = this.config.link.calibration;
    const warning = file ? calibrationWarning(this.rateMbit, file) : undefined;
    if (warning) log.warn({ rateMbit: this.rateMbit, calibration: file }, warning);
  }

  /** Paces the link at `rateMbit` from the next datagram on (SIGHUP, a calibration's steps). */
  setRate(rateMbit: number): void {
    if (rateMbit === this.rateMbit) return;
    this.aggregator.setRate(rateMbit * 1e6);
    log.info({ from: this.rateMbit, to: rateMbit }, 'link rate changed');
    this.rateMbit = rateMbit;
  }

  /** Spools a file and wakes the file sender (a calibration's steps; send-file goes through the spool directory). */
  async offerFile(path: string, calibration?: CalibrationStep): Promise<Manifest> {
    const m = await this.spool.accept(path, calibration ? { calibration } : {});
    this.files.kick();
    return m;
  }

  /** Re-reads the key file (rotation: the highest id signs); also on SIGHUP. */
  reloadKeys(): void {
    const r = this.auth?.reload();
    if (r?.changed) log.info({ keys: this.auth?.ids(), signing: this.auth?.signingId }, 'keys reloaded');
    if (r?.error) log.error({ err: r.error }, 'key file not reloaded; the old keys stay');
  }

  /**
   * SIGHUP: the key file, and the config's link.rateMbit (paced from the next datagram on).
   * A config that no longer parses changes nothing; the error is logged.
   */
  reload(read: () => SendConfig): void {
    this.reloadKeys();
    let rateMbit: number;
    try {
      rateMbit = read().link.rateMbit;
    } catch (err) {
      log.error({ err: (err as Error).message }, 'config not reloaded; the link rate stays');
      return;
    }
    if (rateMbit === this.rateMbit) return;
    this.setRate(rateMbit);
    this.checkCalibration();
  }

  private heartbeat(): void {
    this.reloadKeys();
    this.spoolBytes = duBytes(this.config.store.dir);
    this.sessionSpoolBytes = this.sessionStore?.bytes() ?? 0;
    const a = this.aggregator.snapshot();
    // The sessions as they are now: every frame they name is queued ahead of the heartbeat.
    const sessions = [...this.tcp.marks(), ...(this.rounds?.marks() ?? [])];
    const counters = {
      frames: a.frames,
      copiesSent: a.copiesSent,
      repairFrames: a.repairFrames,
      fecBlocks: a.fec?.blocks ?? 0,
      tcpSessions: this.tcp.counters.opened,
      filesSent: this.files.counters.sent,
      fileBytes: this.files.counters.bytes,
      rateMbit: this.rateMbit,
    };
    const encode = (datagramsSent: number) =>
      encodeHeartbeat(
        {
          intervalMs: this.config.heartbeat.everyMs,
          uptimeS: Math.floor((Date.now() - this.started) / 1000),
          datagramsSent,
          sessions,
          counters,
        },
        this.aggregator.maxPayload,
      );
    this.heartbeats++;
    // Made when its turn comes, so its count is of the datagrams that left before it: copies
    // due meanwhile go ahead of queued originals, and copies not yet due go after them.
    this.aggregator.submitLate(
      (datagramsSent) => ({
        type: FrameType.Heartbeat,
        importance: Importance.High,
        session: 0,
        seq: 0,
        payload: encode(datagramsSent),
        copies: false,
      }),
      encode(0).length,
    );
  }

  /** The epoch frames are sent in now (a new one when the link sequence nears its limit). */
  get epoch(): number {
    return this.aggregator.epoch;
  }

  stats() {
    return {
      role: 'sender',
      epoch: this.epoch,
      link: {
        ...this.aggregator.snapshot(),
        rateMbit: this.rateMbit,
        heartbeats: this.heartbeats,
        unexpectedInbound: this.unexpectedInbound,
        sendErrors: this.sendErrors + (this.writer?.errors ?? 0),
        /** Datagrams per sendmmsg: how much the link writer batched. */
        perSend: this.writer?.calls ? Math.round((10 * this.writer.sent) / this.writer.calls) / 10 : null,
      },
      tcp: {
        ...this.tcp.counters,
        ...(this.rounds?.counters ?? { rounds: 0, replayed: 0, sent: 0 }),
        /** Accepted sessions in the spool (rounds to come or in flight), and their bytes. */
        stored: this.rounds?.stored ?? 0,
        spoolBytes: this.sessionSpoolBytes,
        sessions: this.tcp.stats(),
      },
      udp: this.udp.counters,
      auth: this.auth ? { keys: this.auth.ids(), signing: this.auth.signingId } : null,
      files: {
        ...this.files.counters,
        quarantined: this.spool.quarantined,
        spoolBytes: this.spoolBytes,
        spool: this.files.progress(),
      },
    };
  }

  /** Stops accepting, sends what is queued (up to `graceMs`), and closes. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.outbox?.stop();
    this.files.stop();
    this.rounds?.stop();
    this.metrics?.close();
    await this.tcp.close();
    this.udp.close();
    await Promise.race([this.aggregator.flushed(), new Promise((r) => setTimeout(r, graceMs))]);
    this.rounds?.close();
    this.aggregator.close();
    this.writer?.flush();
    this.writer?.close();
    this.statsFile?.close();
    this.socket.close();
  }
}
