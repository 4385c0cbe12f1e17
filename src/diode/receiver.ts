/**
 * The RED reception system: the collector takes frames off the link, TCP frames go to the
 * TCP sender proxy, UDP frames out to their destination, heartbeats to the link monitor.
 */
import { log } from '../shared/log.js';
import { Collector } from './collector.js';
import type { RecvConfig } from './config.js';
import { decodeHeartbeat, LinkMonitor } from './heartbeat.js';
import { StatsFile } from './stats-file.js';
import { TcpSourceProxy } from './tcp-source-proxy.js';
import { UdpDelivery } from './udp-delivery.js';

export class Receiver {
  private readonly collector: Collector;
  private readonly tcp: TcpSourceProxy;
  private readonly udp: UdpDelivery;
  private readonly monitors = new Map<number, LinkMonitor>();
  private latestEpoch: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private statsFile: StatsFile | undefined;
  private wasAlive = false;
  badHeartbeats = 0;

  constructor(private readonly config: RecvConfig) {
    this.tcp = new TcpSourceProxy({ ...config.tcp, linkDownAbortMs: config.heartbeat.abortAfterMs });
    const allow = config.tcp.allow ? new Set(config.tcp.allow.map((d) => `${d.host}:${d.port}`)) : undefined;
    this.udp = new UdpDelivery(allow);
    this.collector = new Collector(config, {
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
        this.tcp.onHeartbeat(epoch, hb);
      },
    });
  }

  async start(): Promise<void> {
    await this.collector.start();
    this.timer = setInterval(() => this.tick(), 100);
    this.statsFile = new StatsFile(this.config.stats.file, this.config.stats.everyMs, () => this.stats());
    log.info({ listen: this.config.link.listen, dedup: this.config.dedup }, 'diode receiver ready');
  }

  private tick(): void {
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
        epoch: this.latestEpoch ?? null,
        health: monitor?.health() ?? { alive: false, heartbeats: 0 },
        badHeartbeats: this.badHeartbeats,
      },
      tcp: { ...this.tcp.counters, active: this.tcp.active() },
      udp: this.udp.counters,
    };
  }

  /** Resets every incomplete session (a destination never sees a clean end of a partial stream) and closes. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.tcp.shutdown();
    this.collector.close();
    this.udp.close();
    this.statsFile?.close();
  }
}
