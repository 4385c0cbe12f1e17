/**
 * The RED reception system: the collector takes frames off the link (checking tags and
 * rebuilding lost frames from FEC repairs), TCP frames go to the TCP sender proxy, UDP
 * frames out to their destination, file frames to the inbox, heartbeats to the link monitor.
 */
import { join } from 'node:path';
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { diodeLog as log } from '../../shared/log.js';
import { AuditLog } from '../audit.js';
import { CALIBRATION_FILE } from '../calibration-record.js';
import type { RecvConfig } from '../config.js';
import { duBytes } from '../disk.js';
import { byLabel, type MetricDef, Metrics, one } from '../metrics.js';
import { privateDir } from '../private-dir.js';
import { KeyRing } from '../protocol/auth.js';
import { HEADER_BYTES } from '../protocol/frame.js';
import { decodeHeartbeat } from '../protocol/heartbeat.js';
import { StatsFile } from '../stats-file.js';
import { CalibrationRecorder } from './calibration.js';
import { Collector } from './collector.js';
import { FileReceiver } from './inbox.js';
import { LinkMonitor } from './link-monitor.js';
import { OverloadMonitor } from './overload.js';
import { TcpSourceProxy } from './tcp-source-proxy.js';
import { DeliveredOrigins, ReceiverSpool, receiverSpoolDir } from './tcp-spool.js';
import { UdpDelivery } from './udp-delivery.js';

type ReceiverStats = ReturnType<Receiver['stats']>;

const RECEIVER_METRICS: MetricDef<ReceiverStats>[] = [
  { name: 'frames_total', help: 'frames accepted', type: 'counter', samples: (s) => one(s.link.frames) },
  {
    name: 'repairs_total',
    help: 'FEC repair frames received',
    type: 'counter',
    samples: (s) => one(s.link.repairFrames),
  },
  {
    name: 'duplicates_total',
    help: 'copies dropped',
    type: 'counter',
    samples: (s) => one(s.link.duplicates),
  },
  {
    name: 'lost_frames_total',
    help: 'frames lost in every copy and not recovered',
    type: 'counter',
    samples: (s) => one(s.link.lostFrames),
  },
  {
    name: 'auth_failures_total',
    help: 'frames refused by the tag check',
    type: 'counter',
    labelNames: ['reason'],
    samples: (s) => byLabel('reason', s.link.auth),
  },
  {
    name: 'handler_errors_total',
    help: 'frames dropped because their handler threw (must stay 0)',
    type: 'counter',
    labelNames: ['kind'],
    samples: (s) => byLabel('kind', s.link.handlerErrors),
  },
  {
    name: 'fec_blocks_total',
    help: 'FEC blocks by outcome',
    type: 'counter',
    labelNames: ['outcome'],
    samples: (s) =>
      byLabel('outcome', {
        intact: s.link.fec.intact,
        repaired: s.link.fec.repaired,
        failed: s.link.fec.failed,
      }),
  },
  {
    name: 'fec_recovered_frames_total',
    help: 'frames rebuilt from repairs',
    type: 'counter',
    samples: (s) => one(s.link.fec.framesRecovered),
  },
  {
    name: 'fec_min_spare',
    help: 'smallest spare of any FEC block (symbols beyond K)',
    type: 'gauge',
    samples: (s) => one(s.link.fec.minSpare),
  },
  {
    name: 'receiver_dropped_total',
    help: 'datagrams the receiver dropped itself: where=socket (kernel buffer full), queue (not processed in time)',
    type: 'counter',
    labelNames: ['where'],
    samples: (s) =>
      byLabel('where', { socket: s.link.overload.kernelDrops, queue: s.link.overload.queueDrops }),
  },
  {
    name: 'receiver_overloaded',
    help: '1 while the receiver drops datagrams itself (the last second)',
    type: 'gauge',
    samples: (s) => one(s.link.overload.now ? 1 : 0),
  },
  {
    name: 'receiver_overloaded_mbit',
    help: 'the offered rate when the receiver was last overloaded, Mbit/s on the wire',
    type: 'gauge',
    samples: (s) => one(s.link.overload.lastMbit),
  },
  {
    name: 'sessions_total',
    help: 'TCP sessions by state',
    type: 'counter',
    labelNames: ['state'],
    samples: (s) =>
      byLabel('state', {
        opened: s.tcp.sessions,
        completed: s.tcp.completed,
        aborted: s.tcp.aborted,
        round_ignored: s.tcp.roundsIgnored,
        from_spool: s.tcp.deliveredFromSpool,
      }),
  },
  {
    name: 'tcp_held_sessions',
    help: "TCP sessions held in the receiver's spool until delivered",
    type: 'gauge',
    samples: (s) => one(s.tcp.held),
  },
  {
    name: 'files_total',
    help: 'files by state',
    type: 'counter',
    labelNames: ['state'],
    samples: (s) =>
      byLabel('state', {
        delivered: s.files.delivered,
        quarantined: s.files.quarantined,
        incoming: s.files.incoming.length,
      }),
  },
  {
    name: 'spool_bytes',
    help: 'bytes in the spools (files and TCP)',
    type: 'gauge',
    samples: (s) => one(s.files.spoolBytes + s.tcp.spoolBytes),
  },
  {
    name: 'link_up',
    help: '1 while heartbeats arrive',
    type: 'gauge',
    samples: (s) => one(s.link.health.alive ? 1 : 0),
  },
  {
    name: 'link_loss_ratio',
    help: "datagram loss, from the sender's counts in heartbeats",
    type: 'gauge',
    samples: (s) => one('datagramLoss' in s.link.health ? s.link.health.datagramLoss : null),
  },
  {
    name: 'sender_counter',
    help: "the sender's counters from its heartbeats",
    type: 'gauge',
    labelNames: ['name'],
    samples: (s) => byLabel('name', 'sender' in s.link.health ? s.link.health.sender : null),
  },
];

export class Receiver {
  /** The link input: the socket feeds it, and the tests feed it datagrams directly. */
  readonly collector: Collector;
  private readonly auth: KeyRing | undefined;
  private readonly files: FileReceiver | undefined;
  private readonly audit: AuditLog;
  private readonly metrics: Metrics<ReceiverStats> | undefined;
  private spoolBytes = 0;
  private lastKeyCheck = 0;
  private readonly tcp: TcpSourceProxy;
  private readonly tcpSpool: ReceiverSpool | undefined;
  private tcpSpoolBytes = 0;
  private readonly udp: UdpDelivery;
  private readonly monitors = new Map<number, LinkMonitor>();
  private latestEpoch: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private statsFile: StatsFile | undefined;
  private wasAlive = false;
  private readonly tickErrors = new Set<string>();
  private readonly overload = new OverloadMonitor({
    overloaded: (message, details) => log.warn(details, message),
    recovered: (message, details) => log.info(details, message),
  });
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private lastOverloadSample = 0;
  /** The receive buffer asked for from the sender's rate (its heartbeats), once per rate. */
  private sizedForMbit = 0;
  badHeartbeats = 0;

  constructor(private readonly config: RecvConfig) {
    privateDir(config.stateDir, 'stateDir');
    this.audit = new AuditLog(config.audit.file, 'receiver');
    if (config.auth) this.auth = new KeyRing(config.auth.keyFile);
    if (config.files.inbox) {
      const calibration = new CalibrationRecorder(
        join(config.stateDir, CALIBRATION_FILE),
        () => {
          const r = this.collector.readerStats();
          return { drops: r.kernelDrops + r.queueDrops, fecFailed: this.collector.fecFailed() };
        },
        this.audit,
      );
      this.files = new FileReceiver(
        {
          inbox: config.files.inbox,
          spool: config.files.spool ?? join(config.files.inbox, '.tacmesh'),
          incompleteAfterMs: config.files.incompleteAfterMs,
          maxFileBytes: config.files.maxFileBytes,
          reserveBytes: config.files.reserveBytes,
          persistEveryMs: config.files.persistEveryMs,
          maxIncomingFiles: config.files.maxIncomingFiles,
          maxChunks: config.files.maxChunks,
          maxChunkBytes: config.link.maxDatagramBytes - HEADER_BYTES,
          rememberDoneMs: config.files.rememberDoneS * 1000,
          repairing: () => this.collector.repairing(),
        },
        this.audit,
        calibration,
      );
    }
    const tcpStore = config.tcp.store;
    const tcpSpoolDir = receiverSpoolDir(config);
    this.tcpSpool = tcpSpoolDir ? new ReceiverSpool(tcpSpoolDir) : undefined;
    this.tcp = new TcpSourceProxy(
      { ...config.tcp, linkDownAbortMs: config.heartbeat.abortAfterMs },
      {
        ...(this.tcpSpool && tcpStore ? { spool: { spool: this.tcpSpool, retryMs: tcpStore.retryMs } } : {}),
        delivered: new DeliveredOrigins(
          join(config.stateDir, 'tcp-delivered'),
          config.tcp.rememberDeliveredS * 1000,
        ),
        audit: this.audit,
      },
    );
    const allow = config.tcp.allow ? new Set(config.tcp.allow.map((d) => `${d.host}:${d.port}`)) : undefined;
    this.udp = new UdpDelivery(allow);
    this.collector = new Collector(
      config,
      {
        session: (epoch, frame) => this.tcp.onFrame(epoch, frame),
        udp: (frame) => this.udp.deliver(frame),
        heartbeat: (epoch, frame, received) => {
          const hb = decodeHeartbeat(frame.payload);
          if (!hb) {
            this.badHeartbeats++;
            return;
          }
          let monitor = this.monitors.get(epoch);
          if (!monitor) {
            monitor = new LinkMonitor(config.heartbeat.timeoutMs);
            this.monitors.set(epoch, monitor);
          }
          monitor.heard(hb, received);
          this.latestEpoch = epoch;
          if (hb.counters?.rateMbit) this.sizeReceiveBuffer(hb.counters.rateMbit);
          this.tcp.onHeartbeat(epoch, hb);
        },
        file: (epoch, frame) => this.files?.onFrame(epoch, frame),
      },
      {
        ...(this.auth ? { auth: this.auth } : {}),
        epochFile: join(config.stateDir, 'newest-epoch'),
        fecHoldMs: config.fec.holdMs,
      },
    );
    if (config.metrics.listen) this.metrics = new Metrics('receiver', RECEIVER_METRICS, () => this.stats());
  }

  async start(): Promise<void> {
    this.files?.start();
    this.tcp.resumeSpool();
    await this.collector.start();
    if (this.config.metrics.listen) await this.metrics?.listen(this.config.metrics.listen);
    this.timer = setInterval(() => this.tick(), 100);
    this.loopDelay.enable();
    this.statsFile = new StatsFile(this.config.stats.file, this.config.stats.everyMs, () => this.stats());
    if (this.config.insecure)
      log.warn(
        { auth: !!this.config.auth, allow: this.config.tcp.allow !== undefined },
        'insecure: true — ' +
          (this.config.auth
            ? ''
            : 'frames are not authenticated: anyone who can reach the link port can forge them; ') +
          (this.config.tcp.allow
            ? ''
            : 'no tcp.allow: sessions and datagrams may reach any address the open frame names'),
      );
    log.info({ listen: this.config.link.listen, dedup: this.config.dedup }, 'diode receiver ready');
  }

  /** Re-reads the key file (rotation); every second and on SIGHUP. */
  reloadKeys(): void {
    this.collector.reloadKeys();
    const r = this.auth?.reload();
    if (r?.changed) log.info({ keys: this.auth?.ids() }, 'keys reloaded');
    if (r?.error) log.error({ err: r.error }, 'key file not reloaded; the old keys stay');
  }

  /** Every 100 ms. A failing step is logged once per kind; the next tick runs anyway. */
  private tick(): void {
    try {
      this.tickSteps();
    } catch (err) {
      const message = (err as Error).message;
      if (!this.tickErrors.has(message) && this.tickErrors.size < 100) {
        this.tickErrors.add(message);
        log.error({ err: message }, 'receiver housekeeping failed; it goes on');
      }
    }
  }

  /**
   * The buffer for the sender's rate: `longestPauseMs` of its link, when more than configured
   * (the kernel counts about twice a datagram's size, so this holds about as much again).
   */
  private sizeReceiveBuffer(rateMbit: number): void {
    if (rateMbit === this.sizedForMbit) return;
    this.sizedForMbit = rateMbit;
    const { receiveBufferBytes, longestPauseMs } = this.config.link;
    const bytes = Math.round(((rateMbit * 1e6) / 8) * (longestPauseMs / 1000));
    if (bytes > receiveBufferBytes && bytes > (this.collector.receiveBuffer?.requested ?? 0)) {
      log.info(
        { rateMbit, longestPauseMs, bytes },
        'receive buffer sized for the sender rate and the longest pause to ride out',
      );
      this.collector.resizeReceiveBuffer(bytes);
    }
  }

  /** Once a second: what the receiver dropped itself (overload.ts). */
  private sampleOverload(): void {
    const now = performance.now();
    if (now - this.lastOverloadSample < 1000) return;
    this.lastOverloadSample = now;
    const r = this.collector.readerStats();
    this.overload.sample({
      at: now,
      datagrams: r.datagrams,
      bytes: r.bytes,
      kernelDrops: r.kernelDrops,
      queueDrops: r.queueDrops,
      fecFailed: this.collector.fecFailed(),
      mainPauseMs: this.loopDelay.max / 1e6,
    });
    this.loopDelay.reset();
  }

  private tickSteps(): void {
    this.collector.tick();
    this.sampleOverload();
    this.files?.tick();
    if (Date.now() - this.lastKeyCheck > 1000) {
      this.lastKeyCheck = Date.now();
      this.reloadKeys();
      if (this.files)
        this.spoolBytes = duBytes(this.config.files.spool ?? join(this.config.files.inbox!, '.tacmesh'));
      this.tcpSpoolBytes = this.tcpSpool?.bytes() ?? 0;
    }
    this.tcp.tick((epoch) => this.collector.silentMs(epoch));
    const alive = this.linkAlive();
    if (alive !== this.wasAlive) {
      if (alive) log.info({ epoch: this.latestEpoch }, 'link up: heartbeats arriving');
      else log.warn({ epoch: this.latestEpoch }, 'link down: no heartbeat');
      this.wasAlive = alive;
    }
    for (const epoch of this.monitors.keys()) {
      if (epoch !== this.latestEpoch && this.collector.silentMs(epoch) === undefined)
        this.monitors.delete(epoch);
    }
  }

  private linkAlive(): boolean {
    return this.latestEpoch !== undefined && (this.monitors.get(this.latestEpoch)?.alive() ?? false);
  }

  stats() {
    const monitor = this.latestEpoch !== undefined ? this.monitors.get(this.latestEpoch) : undefined;
    return {
      role: 'receiver',
      link: {
        ...this.collector.snapshot(),
        receiveBuffer: this.collector.receiveBuffer ?? null,
        /** The link socket's reader: datagrams, batches, what it dropped, how full its buffers came. */
        reader: this.collector.readerStats(),
        overload: this.overload.status(),
        epoch: this.latestEpoch ?? null,
        health: monitor?.health() ?? { alive: false, heartbeats: 0 },
        badHeartbeats: this.badHeartbeats,
      },
      tcp: {
        ...this.tcp.counters,
        /** Sessions held in the receiver's TCP spool, and its bytes. */
        held: this.tcp.held,
        spoolBytes: this.tcpSpoolBytes,
        active: this.tcp.active(),
      },
      udp: this.udp.counters,
      auth: this.auth ? { keys: this.auth.ids() } : null,
      files: {
        ...(this.files?.counters ?? { delivered: 0, quarantined: 0 }),
        incoming: this.files?.list() ?? [],
        spoolBytes: this.spoolBytes,
      },
    };
  }

  /** Resets every incomplete session (a destination never sees a clean end of a partial stream) and closes. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.loopDelay.disable();
    this.tcp.shutdown();
    this.files?.stop();
    this.metrics?.close();
    this.collector.close();
    this.udp.close();
    this.statsFile?.close();
  }
}
