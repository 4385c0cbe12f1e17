/**
 * The RED transmission system: TCP destination proxy and UDP capture feed the aggregator,
 * which paces frames and their copies onto the one-way link; heartbeats once a second.
 * The link socket is connected to the receiver and only ever sends.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { log } from '../shared/log.js';
import { Aggregator } from './aggregator.js';
import type { SendConfig } from './config.js';
import { CopyPolicy } from './copies.js';
import { FrameType, Importance } from './frame.js';
import { encodeHeartbeat } from './heartbeat.js';
import { SessionStore } from './session-store.js';
import { started } from './started.js';
import { StatsFile } from './stats-file.js';
import { TcpDestinationProxy } from './tcp-destination-proxy.js';
import { UdpCapture } from './udp-capture.js';

const importanceOf = (i: 'high' | 'low') => (i === 'high' ? Importance.High : Importance.Low);

export class Sender {
  readonly epoch = randomBytes(4).readUInt32BE(0) || 1;
  private readonly socket: Socket;
  private readonly aggregator: Aggregator;
  private readonly tcp: TcpDestinationProxy;
  private readonly udp: UdpCapture;
  private readonly started = Date.now();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private statsFile: StatsFile | undefined;
  private unexpectedInbound = 0;
  private sendErrors = 0;
  private nextSession = 1;

  constructor(private readonly config: SendConfig) {
    const { link } = config;
    this.socket = createSocket({ type: link.to.host.includes(':') ? 'udp6' : 'udp4' });
    // A one-way link carries nothing back; anything that does arrive is counted and ignored.
    this.socket.on('message', () => {
      this.unexpectedInbound++;
    });
    this.socket.on('error', (err) => {
      this.sendErrors++;
      log.warn({ err: err.message }, 'link socket error');
    });
    this.aggregator = new Aggregator({
      epoch: this.epoch,
      rateBitsPerSecond: link.rateMbit * 1e6,
      datagramBytes: link.datagramBytes,
      queueBytes: link.bufferBytes,
      copyPolicy: new CopyPolicy({ high: config.copies.high, low: config.copies.low }),
      everyMs: config.copies.everyMs,
      spreadMs: config.copies.spreadMs,
      send: (header, payload) => this.socket.send([header, payload]),
      socketBacklog: () => this.socket.getSendQueueSize(),
    });
    const newSessionId = () => this.nextSession++;
    this.tcp = new TcpDestinationProxy(this.aggregator, {
      epoch: this.epoch,
      services: config.tcp.map((s) => ({ ...s, importance: importanceOf(s.importance) })),
      throughput: config.throughput,
      ...(config.store.enabled ? { store: new SessionStore(config.store.dir) } : {}),
      newSessionId,
    });
    this.udp = new UdpCapture(
      this.aggregator,
      config.udp.map((s) => ({ ...s, importance: importanceOf(s.importance) })),
      newSessionId,
    );
  }

  async start(): Promise<void> {
    const { link } = this.config;
    await started(this.socket, (done) =>
      this.socket.bind({ port: 0, ...(link.from ? { address: link.from } : {}) }, () =>
        this.socket.connect(link.to.port, link.to.host, done),
      ),
    );
    await this.tcp.listen();
    await this.udp.listen();
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.config.heartbeat.everyMs);
    this.heartbeat();
    this.statsFile = new StatsFile(this.config.stats.file, this.config.stats.everyMs, () => this.stats());
    log.info({ epoch: this.epoch, to: link.to, rateMbit: link.rateMbit }, 'diode sender ready');
  }

  private heartbeat(): void {
    const payload = encodeHeartbeat(
      {
        intervalMs: this.config.heartbeat.everyMs,
        uptimeS: Math.floor((Date.now() - this.started) / 1000),
        datagramsSent: this.aggregator.datagramsSent,
        sessions: this.tcp.marks(),
      },
      this.aggregator.maxPayload,
    );
    this.aggregator.submit({
      type: FrameType.Heartbeat,
      importance: Importance.High,
      session: 0,
      seq: 0,
      payload,
      copies: false,
    });
  }

  stats() {
    return {
      role: 'sender',
      epoch: this.epoch,
      link: {
        ...this.aggregator.snapshot(),
        unexpectedInbound: this.unexpectedInbound,
        sendErrors: this.sendErrors,
      },
      tcp: { ...this.tcp.counters, sessions: this.tcp.stats() },
      udp: this.udp.counters,
    };
  }

  /** Stops accepting, sends what is queued (up to `graceMs`), and closes. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.tcp.close();
    this.udp.close();
    await Promise.race([this.aggregator.flushed(), new Promise((r) => setTimeout(r, graceMs))]);
    this.aggregator.close();
    this.statsFile?.close();
    this.socket.close();
  }
}
