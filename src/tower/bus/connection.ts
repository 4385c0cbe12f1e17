/**
 * The tower's connection to its NATS JetStream servers: connects (TLS with the tower's
 * certificate when configured), makes sure the domain's stream exists as configured, keeps
 * reconnecting when a server goes away (logged once per outage), and keeps a picture of
 * the bus's health (connected, stream size, the writer's backlog) fresh for /health and
 * Prometheus.
 */
import {
  connect,
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  nanos,
  StorageType,
  type StreamConfig,
} from 'nats';
import { towerLog } from '../../shared/log.js';
import type { TlsFiles } from '../control/server.js';
import { domainSubjects, streamName } from './codec.js';
import type { BusConfig } from './config.js';
import { brigadeSources } from './echelon.js';

const log = towerLog.child({ stage: 'bus' });

/** How long a resent message id is recognised by the stream (and dropped as a duplicate). */
const DUPLICATE_WINDOW_MS = 2 * 60_000;
const HEALTH_EVERY_MS = 2000;
const CONNECT_TIMEOUT_MS = 5000;

export interface BusHealth {
  connected: boolean;
  /** The server the tower talks to now. */
  server: string | null;
  stream: string;
  /** Batches (or parts of batches) in the stream, and their bytes. */
  messages: number;
  bytes: number;
  /** The writer's backlog: messages not yet delivered to it, and delivered but not acknowledged. */
  pending: number;
  ackPending: number;
  /** How far behind the stream the writer is: the age of the oldest message it has not stored (0: none). */
  lagMs: number;
  /** On a replicated stream, the other servers' copies: current or not, and how many operations behind. */
  replicas: { server: string; current: boolean; lag: number }[];
  /** When the picture was taken (ms since the epoch); 0: never. */
  checkedMs: number;
  /**
   * A division's brigades (bus.echelon; null without): messages of each brigade's stream not
   * yet in the division's, and how long ago its source last heard from it (null: never).
   */
  brigades: { domain: string; lag: number; activeMs: number | null }[] | null;
}

export class BusConnection {
  readonly stream: string;
  readonly health: BusHealth;
  private healthTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(
    readonly config: BusConfig,
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
  ) {
    this.stream = streamName(config.domain);
    this.health = {
      connected: true,
      server: nc.getServer(),
      stream: this.stream,
      messages: 0,
      bytes: 0,
      pending: 0,
      ackPending: 0,
      lagMs: 0,
      replicas: [],
      checkedMs: 0,
      brigades: null,
    };
  }

  /** Connects and sets the stream up; a server that cannot be reached is a clear error. */
  static async open(config: BusConfig, pki: TlsFiles): Promise<BusConnection> {
    const tls = config.tls
      ? {
          caFile: config.tls.ca ?? pki.caCert,
          certFile: config.tls.cert ?? pki.cert,
          keyFile: config.tls.key ?? pki.key,
        }
      : undefined;
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: config.url,
        name: `tacmesh tower (${config.domain})`,
        timeout: CONNECT_TIMEOUT_MS,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        ...(tls ? { tls } : {}),
      });
    } catch (err) {
      throw new Error(`bus: cannot connect to ${config.url.join(', ')}: ${(err as Error).message}`);
    }
    try {
      const jsm = await nc.jetstreamManager();
      const bus = new BusConnection(config, nc, nc.jetstream(), jsm);
      await bus.ensureStream();
      bus.watch();
      await bus.refreshHealth();
      bus.healthTimer = setInterval(() => void bus.refreshHealth(), HEALTH_EVERY_MS);
      bus.healthTimer.unref();
      log.info({ servers: config.url, stream: bus.stream, replicas: config.replicas }, 'bus connected');
      return bus;
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw new Error(`bus: JetStream on ${config.url.join(', ')}: ${(err as Error).message}`);
    }
  }

  /** The largest message the servers take. */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  private async ensureStream(): Promise<void> {
    const want: Partial<StreamConfig> = {
      name: this.stream,
      subjects: [domainSubjects(this.config.domain)],
      storage: StorageType.File,
      num_replicas: this.config.replicas,
      max_age: nanos(this.config.retentionDays * 86_400_000),
      duplicate_window: nanos(DUPLICATE_WINDOW_MS),
      discard: DiscardPolicy.Old,
      ...(this.config.echelon ? { sources: brigadeSources(this.config.echelon.brigades) } : {}),
    };
    const have = await this.jsm.streams.info(this.stream).catch((err: Error) => {
      if (/stream not found/i.test(err.message)) return null;
      throw err;
    });
    if (!have) {
      await this.jsm.streams.add(want);
      log.info(
        { stream: this.stream, replicas: this.config.replicas, brigades: this.config.echelon?.brigades },
        'bus: stream created',
      );
      return;
    }
    const c = have.config;
    const sourced = (s: StreamConfig['sources']) => (s ?? []).map((x) => x.name).join(',');
    if (
      c.num_replicas !== want.num_replicas ||
      c.max_age !== want.max_age ||
      sourced(c.sources) !== sourced(want.sources)
    ) {
      await this.jsm.streams.update(this.stream, {
        ...c,
        num_replicas: want.num_replicas,
        max_age: want.max_age,
        sources: want.sources ?? [],
      });
      log.info(
        { stream: this.stream, replicas: this.config.replicas, brigades: this.config.echelon?.brigades },
        'bus: stream updated',
      );
    }
  }

  /** Logs each outage once, at its start and its end. */
  private watch(): void {
    void (async () => {
      for await (const s of this.nc.status()) {
        if (s.type === 'disconnect' && this.health.connected) {
          this.health.connected = false;
          log.error(
            { server: s.data },
            'bus: server lost; batches are not acknowledged to nodes until it is back',
          );
        } else if (s.type === 'reconnect') {
          this.health.connected = true;
          this.health.server = this.nc.getServer();
          log.info({ server: s.data }, 'bus: reconnected');
        }
      }
    })();
  }

  /** Consumer to read the backlog of (the writer's). */
  consumerName: string | undefined;

  private async refreshHealth(): Promise<void> {
    if (this.closed) return;
    try {
      const s = await this.jsm.streams.info(this.stream);
      this.health.messages = s.state.messages;
      this.health.bytes = s.state.bytes;
      this.health.replicas = (s.cluster?.replicas ?? []).map((r) => ({
        server: r.name,
        current: r.current,
        lag: r.lag ?? 0,
      }));
      const brigades = this.config.echelon?.brigades;
      if (brigades)
        this.health.brigades = brigades.map((domain) => {
          const src = s.sources?.find((x) => x.name === streamName(domain));
          // `active` is nanoseconds since the source last heard from its stream; -1: never.
          const active = src?.active ?? -1;
          return { domain, lag: src?.lag ?? 0, activeMs: active < 0 ? null : Math.round(active / 1e6) };
        });
      if (this.consumerName) {
        const c = await this.jsm.consumers.info(this.stream, this.consumerName);
        this.health.pending = c.num_pending;
        this.health.ackPending = c.num_ack_pending;
        this.health.lagMs = await this.oldestUnstoredAge(
          Math.max(c.ack_floor.stream_seq + 1, s.state.first_seq),
          s.state.last_seq,
        );
      }
      this.health.checkedMs = Date.now();
    } catch {
      // an outage is logged by watch(); the picture keeps its time, so its age shows
    }
  }

  /** The age of message `seq` (the first the writer has not acknowledged), if the stream holds it. */
  private async oldestUnstoredAge(seq: number, lastSeq: number): Promise<number> {
    if (seq > lastSeq) return 0;
    const m = await this.jsm.streams.getMessage(this.stream, { seq }).catch(() => undefined);
    return m ? Math.max(0, Date.now() - m.time.getTime()) : 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.healthTimer);
    await this.nc.drain().catch(() => this.nc.close());
  }
}
