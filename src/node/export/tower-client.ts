/**
 * The control plane's node end: one gRPC stream to the tower over mutual TLS, kept up
 * across tower restarts and link cuts (reconnect with exponential backoff). Records are
 * batched per export interval; every batch goes to the on-disk spool (spool.ts) and stays
 * there until the tower acknowledges it, so a lost link or a kill -9 of the node loses
 * nothing. After a reconnect everything unacknowledged is sent again from the spool, in
 * seq order, followed by the live batches. The tower recognises what it already stored by seq.
 *
 * With `relays` (node.yaml mesh.relay) the link also finds a way when the management path
 * is gone: a batch unacknowledged for ackTimeoutMs ends the stream, and the next one goes
 * through the first neighbour whose relay connects (tower-paths.ts); while it does, the
 * direct path is tried every few seconds and taken back as soon as it connects.
 *
 * Given several tower addresses (a leader and its standby: docs/bus.md), the link talks to
 * one at a time and moves on — to the leader a standby's refusal names, else to the next —
 * when it is refused or its stream is lost; the spool brings the new tower everything not
 * acknowledged.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import * as grpc from '@grpc/grpc-js';
import {
  type TowerClient as GrpcTowerClient,
  type MonitorConfig__Output,
  type NodeMessage,
  proto,
  type QosPolicy__Output,
  type RecordBatch,
  SCHEMA_VERSION,
  type ServiceDeclaration__Output,
  type TowerMessage__Output,
} from '../../proto/index.js';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { nodeLog as log } from '../../shared/log.js';
import type { RouteReport } from '../mesh/routes/watcher.js';
import type { LinkReport } from '../mesh/stage.js';
import type { FlowRecord, HttpEvent, MonitorStats } from '../monitor/records.js';
import { encodeFlow, encodeHttp, encodeLink, encodeRoutes, encodeStats } from './encode.js';
import type { SeqAllocator } from './seq.js';
import { Spool, type SpoolOptions } from './spool.js';
import { TowerPaths } from './tower-paths.js';
import { addressOf } from './uplink.js';

export interface HelloInfo {
  subnets: string[];
  slices: { name: string; subnets: string[]; bridge: string }[];
  position: { lat: number; lon: number } | null;
  /** One per member and service it serves (node.yaml `slices[].members[].services`). */
  services?: ServiceDeclaration__Output[];
}

export interface TowerLinkOptions {
  node: string;
  /** host:port of the tower's control plane; with a standby tower, every tower's (the node sends to the leader). */
  tower: string | string[];
  /** The name in the tower's certificate (default "tower"). */
  towerName?: string;
  tls: { caCert: string; cert: string; key: string };
  /** Keep the control plane on the management network: bind to this address, or this interface's. */
  mgmtAddr?: string;
  mgmtIface?: string;
  hello: () => HelloInfo;
  onMonitorConfig: (config: MonitorConfig__Output) => void;
  /** The tower's QoS policy for this node (on welcome and whenever it changes). */
  onQosPolicy?: (policy: QosPolicy__Output) => void;
  /** The on-disk spool of unacknowledged batches: its directory and bound. */
  spool: SpoolOptions & { dir: string };
  /** Through a neighbour over the mesh when the direct path is gone: their relays' port, the neighbours best first. */
  relays?: { port: number; neighbours: () => string[]; ackTimeoutMs: number };
}

const BACKOFF_MIN_MS = 250;
const MAX_HELD = 1000;
const BACKOFF_MAX_MS = 10_000;
/** How long one path may take to connect, and how often a node on a neighbour's relay tries the direct path. */
const CONNECT_TIMEOUT_MS = 1000;
const DIRECT_RETRY_MS = 2000;
const WATCH_MS = 500;
/** While a standby answers, the towers are up and the lease is moving: tried again this soon. */
const STANDBY_RETRY_MS = 500;
/** How long after a standby's refusal the next tries stay that close. */
const STANDBY_WINDOW_MS = 10_000;

export class TowerLink {
  readonly spool: Spool;
  /** Every tower's control-plane address; the link talks to towers[at]. */
  private readonly towers: string[];
  private at = 0;
  /** Where the last standby's refusal said the leader is. */
  private leaderHint: string | undefined;
  private lastStandbyMs = 0;
  /** Agent events waiting for the tower, also on disk so that a restart keeps them. */
  private readonly held: NodeMessage[] = [];
  private readonly heldFile: string;
  /** The last seq written on the current stream. */
  private sentTo = 0;
  private waitingDrain = false;
  /** Batches up to this seq were spooled before the link came up: the backfill. */
  private resending = 0;
  private pending: Pending = emptyPending();
  private call: grpc.ClientDuplexStream<NodeMessage, TowerMessage__Output> | undefined;
  private client: GrpcTowerClient | undefined;
  private paths: TowerPaths | undefined;
  private target = '';
  private credentials: grpc.ChannelCredentials | undefined;
  /** The neighbour the current stream goes through (null: direct). */
  private streamVia: string | null = null;
  private streamStartedMs = 0;
  /** Batches written on this stream and not acknowledged yet, oldest first. */
  private inFlight: { lastSeq: number; sentMs: number }[] = [];
  private watchTimer: NodeJS.Timeout | undefined;
  private lastDirectTryMs = 0;
  private tryingDirect = false;
  private welcomed = false;
  private stopped = false;
  private backoff = BACKOFF_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Counters the node reports and tests check. */
  readonly counters = {
    connects: 0,
    flowRecords: 0,
    refusals: 0,
    batchesAcked: 0,
    /** Records sent again from the spool after a reconnect. */
    recordsResent: 0,
    recordsLost: 0,
    messagesDropped: 0,
    /** Streams that went through a neighbour's relay. */
    viaNeighbour: 0,
    lastRefusal: '',
  };

  constructor(
    private readonly options: TowerLinkOptions,
    private readonly seq: SeqAllocator,
  ) {
    this.towers = [options.tower].flat();
    if (this.towers.length === 0) throw new Error('the tower link needs a tower address');
    const { dir, ...bound } = options.spool;
    this.spool = new Spool(dir, bound);
    this.counters.recordsLost = this.spool.lost;
    // The seq file may be older than the spool after a power cut: never reuse a spooled seq.
    this.seq.skipTo(this.spool.lastSeq + 1);
    this.heldFile = join(dir, 'held-events');
    this.held.push(...this.readHeld());
  }

  /** The held events from disk; none when the file is absent, or unreadable (logged). */
  private readHeld(): NodeMessage[] {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.heldFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    try {
      const held = deserialize(bytes) as unknown;
      if (Array.isArray(held)) return held as NodeMessage[];
    } catch {
      // torn: below
    }
    log.warn(
      { file: this.heldFile, bytes: bytes.length },
      'held agent events unreadable (a power cut?): dropped',
    );
    return [];
  }

  get connected(): boolean {
    return this.welcomed;
  }

  /** The neighbour the tower is reached through now; null when direct (or not connected). */
  get via(): string | null {
    return this.welcomed ? this.streamVia : null;
  }

  /** The tower address the link talks to (or tries) now. */
  get tower(): string {
    return this.towers[this.at] as string;
  }

  get unacknowledged(): number {
    return this.spool.records;
  }

  async start(): Promise<void> {
    const { relays } = this.options;
    const local =
      this.options.mgmtAddr ?? (this.options.mgmtIface ? addressOf(this.options.mgmtIface) : undefined);
    this.target = this.tower;
    if (local || relays) {
      this.paths = new TowerPaths({
        tower: this.tower,
        ...(local ? { localAddress: local } : {}),
        ...(relays ? { relays: { port: relays.port, neighbours: relays.neighbours } } : {}),
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
      });
      this.target = await this.paths.start();
      if (local)
        log.info({ tower: this.tower, from: local }, 'control plane bound to the management address');
    }
    const { tls } = this.options;
    this.credentials = grpc.credentials.createSsl(
      readFileSync(tls.caCert),
      readFileSync(tls.key),
      readFileSync(tls.cert),
    );
    this.newClient();
    if (relays) this.watchTimer = setInterval(() => this.watch(relays.ackTimeoutMs), WATCH_MS);
    void this.connect();
  }

  private newClient(): void {
    const towerName = this.options.towerName ?? 'tower';
    this.client?.close();
    this.client = new proto.tacmesh.v1.Tower(this.target, this.credentials as grpc.ChannelCredentials, {
      'grpc.ssl_target_name_override': towerName,
      'grpc.default_authority': towerName,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.initial_reconnect_backoff_ms': BACKOFF_MIN_MS,
      'grpc.max_reconnect_backoff_ms': BACKOFF_MAX_MS,
    }) as unknown as GrpcTowerClient;
  }

  private async connect(): Promise<void> {
    if (this.stopped || !this.client) return;
    this.welcomed = false;
    this.waitingDrain = false;
    let via: string | null = null;
    if (this.options.relays && this.paths) {
      // A path is chosen by connecting over it; a fresh channel, as the last one may still
      // hold a connection over the path that was lost.
      const route = await this.paths.choose();
      if (this.stopped) return;
      if (!route) {
        this.scheduleReconnect('no path to the tower');
        return;
      }
      via = route.via;
      if (via) this.counters.viaNeighbour++;
      this.newClient();
    }
    const call = (this.client as GrpcTowerClient).Connect();
    this.call = call;
    this.streamVia = via;
    this.streamStartedMs = Date.now();
    this.inFlight = [];
    const h = this.options.hello();
    call.write({
      hello: {
        schemaVersion: SCHEMA_VERSION,
        node: this.options.node,
        subnets: h.subnets,
        slices: h.slices,
        services: h.services ?? [],
        position: h.position ?? { lat: 0, lon: 0 },
        software: 'tacmesh 0.1.0',
        clockMs: Date.now(),
        lastSeq: this.seq.last,
        via: via ?? '',
      },
    });
    call.on('data', (msg: TowerMessage__Output) => this.onMessage(msg));
    const retry = (why: Error | string) => {
      if (this.call !== call) return;
      this.call = undefined;
      this.welcomed = false;
      this.moveOn();
      this.scheduleReconnect(why);
    };
    call.on('error', (err: Error) => retry(err));
    call.on('end', () => retry('stream ended'));
  }

  /**
   * With several towers, after a refusal or a lost stream: the one a standby named as the
   * leader, else the next in the list; a fresh channel, as gRPC would keep the old connection.
   */
  private moveOn(): void {
    if (this.towers.length < 2) return;
    const named = this.leaderHint ? this.towers.indexOf(this.leaderHint) : -1;
    this.leaderHint = undefined;
    this.at = named >= 0 ? named : (this.at + 1) % this.towers.length;
    if (this.paths) this.paths.setTower(this.tower);
    else this.target = this.tower;
    // Over relays, connect() makes the fresh channel once it has chosen a path.
    if (!(this.options.relays && this.paths)) this.newClient();
  }

  private scheduleReconnect(why: string | Error): void {
    if (this.stopped) return;
    const wait =
      Date.now() - this.lastStandbyMs < STANDBY_WINDOW_MS
        ? Math.min(this.backoff, STANDBY_RETRY_MS)
        : this.backoff;
    log.info(
      {
        ...(typeof why === 'string' ? { reason: why } : { err: why }),
        retryInMs: wait,
        ...(this.towers.length > 1 ? { next: this.tower } : {}),
      },
      'tower link down; reconnecting',
    );
    this.reconnectTimer = setTimeout(() => void this.connect(), wait);
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
  }

  /** Ends the stream and opens another at once (over the path `connect` finds). */
  private abandon(why: string): void {
    const call = this.call;
    if (!call) return;
    this.call = undefined;
    this.welcomed = false;
    log.warn({ reason: why, via: this.streamVia ?? 'direct' }, 'tower path given up');
    call.cancel();
    clearTimeout(this.reconnectTimer);
    this.backoff = BACKOFF_MIN_MS;
    void this.connect();
  }

  /** With relays: a path that stopped answering is given up; on a relay, the direct path is retried. */
  private watch(ackTimeoutMs: number): void {
    if (!this.call) return;
    const now = Date.now();
    if (!this.welcomed) {
      if (now - this.streamStartedMs > ackTimeoutMs) this.abandon(`no welcome in ${ackTimeoutMs} ms`);
      return;
    }
    const oldest = this.inFlight[0];
    if (oldest && now - oldest.sentMs > ackTimeoutMs) {
      this.abandon(`no acknowledgement in ${ackTimeoutMs} ms`);
      return;
    }
    if (this.streamVia && this.paths && !this.tryingDirect && now - this.lastDirectTryMs >= DIRECT_RETRY_MS) {
      this.lastDirectTryMs = now;
      this.tryingDirect = true;
      const paths = this.paths;
      void paths.directBack().then((back) => {
        this.tryingDirect = false;
        if (back && this.streamVia) this.abandon('the direct path is back');
      });
    }
  }

  private onMessage(msg: TowerMessage__Output): void {
    if (msg.welcome) {
      this.welcomed = true;
      this.backoff = BACKOFF_MIN_MS;
      // The tower holds every seq up to storedSeq: new records must come after it (a node
      // whose state was lost or restored from an old copy would otherwise be dropped as resends).
      this.seq.skipTo(Number(msg.welcome.storedSeq) + 1);
      this.counters.connects++;
      log.info(
        { tower: this.tower, via: this.streamVia ?? 'direct', spooled: this.spool.records },
        'tower link up',
      );
      if (msg.welcome.monitorConfig) this.options.onMonitorConfig(msg.welcome.monitorConfig);
      if (msg.welcome.qosPolicy) this.options.onQosPolicy?.(msg.welcome.qosPolicy);
      for (const m of this.held.splice(0)) this.call?.write(m);
      this.saveHeld();
      this.sentTo = 0;
      this.resending = this.spool.lastSeq;
      this.pump();
    } else if (msg.ack) {
      const acked = Number(msg.ack.lastSeq);
      while ((this.inFlight[0]?.lastSeq ?? Number.POSITIVE_INFINITY) <= acked) this.inFlight.shift();
      this.spool.ack(acked);
      this.counters.batchesAcked++;
    } else if (msg.monitorConfig) {
      this.options.onMonitorConfig(msg.monitorConfig);
    } else if (msg.qosPolicy) {
      this.options.onQosPolicy?.(msg.qosPolicy);
    } else if (msg.refusal) {
      this.counters.refusals++;
      this.counters.lastRefusal = msg.refusal.reason;
      if (msg.refusal.standby) {
        this.lastStandbyMs = Date.now();
        this.leaderHint = msg.refusal.leader || undefined;
        log.info(
          { tower: this.tower, leader: msg.refusal.leader || 'not known' },
          'a standby tower: moving on',
        );
        // Ended here too: a leader that lost its lease says so on a stream it may not close itself.
        this.call?.cancel();
      } else log.error({ tower: this.tower, reason: msg.refusal.reason }, 'the tower refused this node');
    }
  }

  /** Sends to the tower now if connected; dropped otherwise (status: the next one replaces it). */
  sendNow(message: NodeMessage): void {
    if (this.welcomed) this.call?.write(message);
  }

  /**
   * Sends now, or as soon as the tower is back (the last MAX_HELD are kept meanwhile, on disk
   * too, so a restart of the node keeps them): agent events.
   */
  sendSoon(message: NodeMessage): void {
    if (this.welcomed && this.call) {
      this.call.write(message);
      return;
    }
    this.held.push(message);
    if (this.held.length > MAX_HELD) {
      this.held.shift();
      this.counters.messagesDropped++;
    }
    this.saveHeld();
  }

  /** Messages held for the tower (agent events). */
  get heldCount(): number {
    return this.held.length;
  }

  private saveHeld(): void {
    if (this.held.length === 0) {
      rmSync(this.heldFile, { force: true });
      return;
    }
    writeFileAtomic(this.heldFile, serialize(this.held));
  }

  /** The monitor's latest stats (for metrics). */
  lastStats: MonitorStats | undefined;

  flows(records: FlowRecord[]): void {
    this.pending.flows.push(...records);
    this.counters.flowRecords += records.length;
  }

  http(event: HttpEvent): void {
    this.pending.http.push(event);
  }

  /** The monitor's stats close an export interval: what gathered becomes one batch. */
  stats(stats: MonitorStats): void {
    this.lastStats = stats;
    this.pending.stats.push(stats);
    this.cutBatch();
  }

  /** The mesh stage's link reports: they go with the next batch, or — `now` — in one of their own at once. */
  linkReports(reports: LinkReport[], now = false): void {
    const timeMs = Date.now();
    for (const report of reports) this.pending.links.push({ report, timeMs });
    if (now) this.cutBatch();
  }

  /** The mesh stage's route report: it goes with the next batch. */
  routeReport(report: RouteReport, timeMs = Date.now()): void {
    this.pending.routes.push({ report, timeMs });
  }

  private cutBatch(): void {
    const { flows, http, stats, links, routes } = this.pending;
    this.pending = emptyPending();
    const records = flows.length + http.length + stats.length + links.length + routes.length;
    if (records === 0) return;
    const firstSeq = this.seq.last + 1;
    const batch: RecordBatch = {
      firstSeq,
      flows: flows.map((r) => encodeFlow(r, this.seq.take())),
      http: http.map((e) => encodeHttp(e, this.seq.take())),
      stats: stats.map((s) => encodeStats(s, this.seq.take(), this.counters.recordsLost)),
      links: links.map((l) => encodeLink(l.report, this.seq.take(), l.timeMs)),
      routes: routes.map((r) => encodeRoutes(r.report, this.seq.take(), r.timeMs)),
      lastSeq: 0,
    };
    batch.lastSeq = this.seq.last;
    this.spool.append(batch);
    this.counters.recordsLost = this.spool.lost;
    this.pump();
  }

  /**
   * Writes what the spool holds past the last seq sent on this stream, oldest first,
   * pausing while gRPC's buffer is full: the backlog after a cut, then live batches.
   */
  private pump(): void {
    const call = this.call;
    if (this.waitingDrain || !call) return;
    while (this.welcomed && this.call === call) {
      const batch = this.spool.next(this.sentTo);
      if (!batch) return;
      this.sentTo = Number(batch.lastSeq);
      this.inFlight.push({ lastSeq: this.sentTo, sentMs: Date.now() });
      if (this.sentTo <= this.resending)
        this.counters.recordsResent += this.sentTo - Number(batch.firstSeq) + 1;
      if (!call.write({ batch })) {
        this.waitingDrain = true;
        call.once('drain', () => {
          if (this.call !== call) return;
          this.waitingDrain = false;
          this.pump();
        });
        return;
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.watchTimer);
    this.spool.close();
    this.call?.end();
    this.call?.cancel();
    this.client?.close();
    await this.paths?.close();
  }
}
/** What gathers between two batches. */
interface Pending {
  flows: FlowRecord[];
  http: HttpEvent[];
  stats: MonitorStats[];
  links: { report: LinkReport; timeMs: number }[];
  routes: { report: RouteReport; timeMs: number }[];
}

const emptyPending = (): Pending => ({ flows: [], http: [], stats: [], links: [], routes: [] });
