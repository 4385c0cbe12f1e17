/**
 * The control plane's tower end: gRPC over mutual TLS only. A node's certificate must come
 * from our CA (else the TLS handshake fails, and is logged), not be revoked (its connection
 * is closed right after the handshake, and again when the deny-list changes), carry the node
 * role, and name the node its hello claims. Each node stream: hello (checked: see hello.ts)
 * → welcome, then batches stored (or, with a bus, put on it: docs/bus.md) and acknowledged in
 * order, status and agent events recorded, monitoring settings pushed.
 *
 * What one node may cost: a few streams (limits.streamsPerNode), bounded messages and
 * HTTP/2 streams per connection, a hello every few seconds, limits.messagesPerSecond status,
 * events and QoS reports (more are dropped and counted), record times no later than its
 * clock can be, and a bounded number of seq gaps.
 */
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { RevocationList } from '../../pki/revoked.js';
import {
  type NodeMessage__Output,
  proto,
  SCHEMA_VERSION,
  type TowerHandlers,
  type TowerMessage,
} from '../../proto/index.js';
import { towerLog as log } from '../../shared/log.js';
import { BusUnavailable } from '../bus/publisher.js';
import { BadBatch, decodeBatch } from '../ingest/decode.js';
import type { LocalityMap, Prefix } from '../ingest/locality.js';
import { type Cidr, overlap } from '../ingest/prefix.js';
import type { IngestBatch, MonitorSettings } from '../model.js';
import type { QosPush, QosService } from '../qos/service.js';
import type { Registry } from '../registry.js';
import type { ServiceRegistry } from '../services/registry.js';
import type { DuckStore } from '../store/duckdb.js';
import { checkHello } from './hello.js';
import { Buckets } from './rate.js';

export interface TlsFiles {
  caCert: string;
  cert: string;
  key: string;
}

export interface ControlCounters {
  tlsRefused: number;
  /** Connections closed because the peer's certificate serial is on the deny-list. */
  revokedRefused: number;
  identityRefused: number;
  /** Hellos refused: too many or malformed subnets, another node's subnets, not allowed ones. */
  helloRefused: number;
  /** Streams refused because the node had limits.streamsPerNode open, or said hello too often. */
  streamsRefused: number;
  /** Status, events and QoS reports dropped above limits.messagesPerSecond. */
  messagesThrottled: number;
  /** Record times clamped to the latest a node's clock can be. */
  timesClamped: number;
  /** Gaps in nodes' stored seqs closed to keep within limits.seqGapsPerNode. */
  seqGapsClosed: number;
  badMessages: number;
  recordsStored: number;
  recordsDuplicate: number;
  storeErrors: number;
  batches: number;
  /** Batches the bus did not take in time (the node keeps them and resends). */
  busErrors: number;
  /** Node streams refused because this tower is a standby (another holds the lease). */
  standbyRefused: number;
}

/** What one node may cost the tower (tower.yaml `limits`). */
export interface ControlLimits {
  subnetsPerNode: number;
  messagesPerSecond: number;
  streamsPerNode: number;
  clockSkewMinutes: number;
}

export interface ControlOptions {
  /** tower.yaml `nodes`: who may connect, and the subnets each may register (null: any). */
  allowedNodes?: Map<string, Cidr[] | null> | null;
  /** The QoS policy pushed to nodes and their counters; none: no QoS. */
  qos?: QosService;
  limits: ControlLimits;
  /** Revoked certificate serials. */
  revoked?: RevocationList;
  /** The service registry the nodes' hellos declare services to. */
  services?: ServiceRegistry;
  /**
   * With a bus: where a batch goes instead of the store, resolving once it is durable there;
   * the bus's writer then stores it through commit().
   */
  publish?: (batch: IngestBatch) => Promise<void>;
  /**
   * With a leader lease: why this tower takes no node stream now, and the leader's
   * advertised address ("" when not known); undefined while it leads.
   */
  standby?: () => Standby | undefined;
}

/** A standby's word to a node it refuses. */
export interface Standby {
  reason: string;
  leader: string;
}

/** Extra consumers of every stored batch (the InfluxDB sink, the live dashboard feed). */
export type BatchListener = (batch: IngestBatch) => void;

const CLOCK_SKEW_WARN_MS = 2000;
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** HTTP/2 streams one connection may have open (a node needs one). */
const MAX_STREAMS_PER_CONNECTION = 8;
/** A stream that has not said hello by then is ended. */
const HELLO_TIMEOUT_MS = 10_000;
/** How often the deny-list file is looked at for a change. */
const REVOKED_CHECK_MS = 1000;
/** Record times may run this far ahead of the tower's clock plus the node's measured skew. */
const TIME_SLACK_MS = 60_000;

export function toWireMonitor(s: MonitorSettings) {
  return { l3: s.l3, l4: s.l4, l7: s.l7, sample: s.sample, intervalMs: s.intervalMs, version: s.version };
}

export class ControlServer {
  readonly counters: ControlCounters = {
    tlsRefused: 0,
    revokedRefused: 0,
    identityRefused: 0,
    helloRefused: 0,
    streamsRefused: 0,
    messagesThrottled: 0,
    timesClamped: 0,
    seqGapsClosed: 0,
    badMessages: 0,
    recordsStored: 0,
    recordsDuplicate: 0,
    storeErrors: 0,
    batches: 0,
    busErrors: 0,
    standbyRefused: 0,
  };
  private readonly server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_concurrent_streams': MAX_STREAMS_PER_CONNECTION,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
  });
  private readonly listeners: BatchListener[] = [];
  private readonly watched = new WeakSet<NodeJS.EventEmitter>();
  private readonly qos: QosService | undefined;
  private readonly allowedNodes: Map<string, Cidr[] | null> | null;
  private readonly limits: ControlLimits;
  private readonly revoked: RevocationList | undefined;
  private readonly services: ServiceRegistry | undefined;
  private readonly publish: ((batch: IngestBatch) => Promise<void>) | undefined;
  private readonly standby: (() => Standby | undefined) | undefined;
  /** Each node stream open now, and how to end it (the lease lost: endStreams). */
  private readonly open = new Map<object, (s: Standby) => void>();
  /** Open TLS connections and their peer's certificate serial (to close on revocation). */
  private readonly sockets = new Map<TLSSocket, string>();
  private readonly streams = new Map<string, number>();
  private readonly hellos = new Buckets(0.5, 5);
  private readonly messages: Buckets;
  private readonly throttledLogged = new Map<string, number>();
  private revokedTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly store: DuckStore,
    private readonly places: LocalityMap,
    options: ControlOptions,
  ) {
    this.qos = options.qos;
    this.allowedNodes = options.allowedNodes ?? null;
    this.limits = options.limits;
    this.revoked = options.revoked;
    this.services = options.services;
    this.publish = options.publish;
    this.standby = options.standby;
    this.messages = new Buckets(this.limits.messagesPerSecond, this.limits.messagesPerSecond * 10);
    const handlers: TowerHandlers = { Connect: (call) => void this.serve(call) };
    this.server.addService(proto.tacmesh.v1.Tower.service, handlers);
  }

  onBatch(listener: BatchListener): void {
    this.listeners.push(listener);
  }

  /** Binds `host:port` (port 0 picks one) and returns the port. */
  async listen(address: string, tls: TlsFiles): Promise<number> {
    const credentials = grpc.ServerCredentials.createSsl(
      readFileSync(tls.caCert),
      [{ cert_chain: readFileSync(tls.cert), private_key: readFileSync(tls.key) }],
      true, // a client certificate is required
    );
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.watchHandshakes();
    if (this.revoked && !this.revokedTimer) {
      this.revokedTimer = setInterval(() => this.checkRevoked(), REVOKED_CHECK_MS);
      this.revokedTimer.unref();
    }
    return port;
  }

  /** Re-reads the deny-list if it changed, and closes the connections it now refuses. */
  private checkRevoked(): void {
    const list = this.revoked;
    if (!list) return;
    const before = list.error;
    const changed = list.refresh();
    if (list.error && list.error !== before)
      log.error(
        { file: list.path, reason: list.error },
        'revocation list unreadable: keeping the last one read',
      );
    if (!changed) return;
    log.info({ file: list.path, serials: list.size }, 'revocation list re-read');
    for (const [socket, serial] of this.sockets) {
      if (!list.has(serial)) continue;
      this.counters.revokedRefused++;
      log.warn(
        { peer: socket.remoteAddress, serial },
        'control plane: connection of a revoked certificate closed',
      );
      socket.destroy();
    }
  }

  /** Refuses a connection whose certificate is revoked, right after its handshake. */
  private onSecureConnection(socket: TLSSocket): void {
    this.checkRevoked();
    const serial = socket.getPeerCertificate()?.serialNumber ?? '';
    if (this.revoked?.has(serial)) {
      this.counters.revokedRefused++;
      log.warn({ peer: socket.remoteAddress, serial }, 'control plane: revoked certificate refused');
      socket.destroy();
      return;
    }
    this.sockets.set(socket, serial);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /**
   * grpc-js keeps TLS handshake failures to itself; we reach its HTTP/2 servers to log and
   * count them (a peer with a foreign CA or an expired certificate). Tested in control.test.ts.
   */
  private watchHandshakes(): void {
    const servers = (this.server as unknown as { http2Servers?: Map<NodeJS.EventEmitter, unknown> })
      .http2Servers;
    if (!servers)
      throw new Error('this @grpc/grpc-js no longer exposes its HTTP/2 servers: update watchHandshakes');
    for (const http2Server of servers.keys()) {
      if (this.watched.has(http2Server)) continue;
      this.watched.add(http2Server);
      http2Server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
        this.counters.tlsRefused++;
        log.warn({ peer: socket.remoteAddress, err }, 'control plane: TLS handshake refused');
      });
      http2Server.on('secureConnection', (socket: TLSSocket) => this.onSecureConnection(socket));
    }
  }

  private async serve(call: grpc.ServerDuplexStream<NodeMessage__Output, TowerMessage>): Promise<void> {
    const peer = call.getPeer();
    const cert = call.getAuthContext()?.sslPeerCertificate;
    const cn = cert?.subject?.CN;
    const certName = typeof cn === 'string' ? cn : undefined;
    const certRole = cert?.subject?.OU;
    const refuse = (code: grpc.status, reason: string, counter: keyof ControlCounters, standby?: Standby) => {
      this.counters[counter]++;
      log.warn({ peer, certName, reason }, 'control plane: node refused');
      call.write({ refusal: { reason, ...(standby ? { standby: true, leader: standby.leader } : {}) } });
      call.emit('error', { code, details: reason });
    };
    if (!certName || certRole !== 'node') {
      refuse(
        grpc.status.PERMISSION_DENIED,
        'the certificate is not a tacmesh node certificate',
        'identityRefused',
      );
      return;
    }
    if (this.revoked?.has(cert?.serialNumber)) {
      refuse(
        grpc.status.PERMISSION_DENIED,
        `certificate serial ${cert?.serialNumber} is revoked`,
        'revokedRefused',
      );
      return;
    }
    const standby = this.standby?.();
    if (standby) {
      refuse(grpc.status.UNAVAILABLE, standby.reason, 'standbyRefused', standby);
      return;
    }
    const open = this.streams.get(certName) ?? 0;
    if (open >= this.limits.streamsPerNode) {
      refuse(
        grpc.status.RESOURCE_EXHAUSTED,
        `node "${certName}" has ${open} streams open, the most it may (limits.streamsPerNode)`,
        'streamsRefused',
      );
      return;
    }
    this.streams.set(certName, open + 1);
    this.open.set(call, (s) => refuse(grpc.status.UNAVAILABLE, s.reason, 'standbyRefused', s));
    let node: string | undefined;
    let push: ((s: MonitorSettings) => void) | undefined;
    let latestMs = () => Date.now() + TIME_SLACK_MS;
    const qosPush: QosPush = (policy) => call.write({ qosPolicy: policy });
    const helloTimer = setTimeout(() => {
      if (!node) refuse(grpc.status.DEADLINE_EXCEEDED, 'no hello in time', 'badMessages');
    }, HELLO_TIMEOUT_MS);
    try {
      for await (const msg of call as AsyncIterable<NodeMessage__Output>) {
        if (msg.hello) {
          const h = msg.hello;
          if (node) {
            refuse(grpc.status.FAILED_PRECONDITION, 'a stream says hello once', 'badMessages');
            return;
          }
          if (h.node !== certName) {
            refuse(
              grpc.status.PERMISSION_DENIED,
              `hello names node "${h.node}" but the certificate is for "${certName}"`,
              'identityRefused',
            );
            return;
          }
          if (this.allowedNodes && !this.allowedNodes.has(h.node)) {
            refuse(
              grpc.status.PERMISSION_DENIED,
              `node "${h.node}" is not in the tower's node list`,
              'identityRefused',
            );
            return;
          }
          if (!this.hellos.take(h.node)) {
            refuse(
              grpc.status.RESOURCE_EXHAUSTED,
              'too many hellos from this node: retry later',
              'streamsRefused',
            );
            return;
          }
          const allowed = this.allowedNodes?.get(h.node) ?? undefined;
          const { others, taken } = this.othersSubnets(h.node, allowed);
          const checked = checkHello(h, { maxSubnets: this.limits.subnetsPerNode, allowed, others });
          if ('refused' in checked) {
            refuse(grpc.status.INVALID_ARGUMENT, checked.refused, 'helloRefused');
            return;
          }
          for (const t of taken) {
            log.warn(
              { node: h.node, from: t.node, subnet: t.cidr.text },
              'a subnet tower.yaml gives this node taken from the node that had registered it',
            );
            await this.registry.dropSubnet(t.node as string, t.cidr.text);
          }
          const skew = h.clockMs ? Date.now() - h.clockMs : 0;
          if (Math.abs(skew) > CLOCK_SKEW_WARN_MS)
            log.warn({ node: h.node, skewMs: skew }, 'node clock differs from the tower');
          // A node's clock ahead of ours (skew < 0) moves its record times ahead, up to the limit.
          const ahead = Math.min(Math.max(0, -skew), this.limits.clockSkewMinutes * 60_000) + TIME_SLACK_MS;
          latestMs = () => Date.now() + ahead;
          push = (settings) => call.write({ monitorConfig: toWireMonitor(settings) });
          const state = await this.registry.hello({ name: h.node, ...checked, clockSkewMs: skew }, push);
          node = h.node;
          clearTimeout(helloTimer);
          this.services?.setNode(node, h.services);
          const qosPolicy = this.qos?.connect(node, qosPush);
          log.info({ node, peer, subnets: h.subnets }, 'node connected');
          call.write({
            welcome: {
              schemaVersion: SCHEMA_VERSION,
              storedSeq: this.store.stored.get(node)?.contiguousHigh ?? 0,
              monitorConfig: toWireMonitor(state.monitor),
              ...(qosPolicy ? { qosPolicy } : {}),
            },
          });
          continue;
        }
        if (!node) {
          refuse(grpc.status.FAILED_PRECONDITION, 'the first message must be a hello', 'badMessages');
          return;
        }
        if (msg.batch) {
          if (!(await this.storeBatch(node, msg.batch, call, latestMs()))) {
            // End the stream: the node reconnects and resends everything not acknowledged.
            call.emit('error', {
              code: grpc.status.UNAVAILABLE,
              details: 'the tower could not store a batch',
            });
            return;
          }
        } else if (!this.messages.take(node)) {
          this.throttled(node);
        } else if (msg.status) {
          await this.registry.status(node, {
            timeMs: Math.min(msg.status.timeMs, latestMs()),
            health: msg.status.health,
            interfaces: msg.status.interfaces,
            monitorVersion: msg.status.monitorConfig?.version ?? 0,
          });
        } else if (msg.qos) {
          await this.qos?.counters(node, msg.qos);
        } else if (msg.event) {
          const e = msg.event;
          await this.registry.event({
            node,
            timeMs: Math.min(e.timeMs, latestMs()),
            entity: e.entity,
            problem: e.problem,
            action: e.action,
            ok: e.ok,
            cause: e.cause,
            error: e.error,
            tookMs: e.tookMs,
          });
        }
      }
    } catch (err) {
      log.info({ node, peer, err }, 'node stream ended with an error');
    } finally {
      clearTimeout(helloTimer);
      this.open.delete(call);
      const left = (this.streams.get(certName) ?? 1) - 1;
      if (left > 0) this.streams.set(certName, left);
      else this.streams.delete(certName);
      if (node && push) {
        this.registry.disconnected(node, push);
        this.qos?.disconnect(node, qosPush);
        log.info({ node }, 'node disconnected');
      }
    }
  }

  /**
   * Every prefix placing addresses on another node (hellos, the site file, tower.yaml lists),
   * except — for a node tower.yaml gives subnets — those another node registered by hello
   * without being given them: tower.yaml's word wins, and these are `taken` from it.
   */
  private othersSubnets(node: string, allowed: Cidr[] | undefined): { others: Prefix[]; taken: Prefix[] } {
    const others: Prefix[] = [];
    const taken: Prefix[] = [];
    for (const p of this.places.othersSubnets(node)) {
      const unlisted = p.origin === 'hello' && !this.allowedNodes?.get(p.node as string);
      if (allowed && unlisted && allowed.some((a) => overlap(a, p.cidr))) taken.push(p);
      else others.push(p);
    }
    for (const [name, cidrs] of this.allowedNodes ?? [])
      if (name !== node) for (const cidr of cidrs ?? []) others.push({ cidr, origin: 'site', node: name });
    return { others, taken };
  }

  private throttled(node: string): void {
    this.counters.messagesThrottled++;
    const now = Date.now();
    if (now - (this.throttledLogged.get(node) ?? 0) < 60_000) return;
    this.throttledLogged.set(node, now);
    log.warn(
      { node, perSecond: this.limits.messagesPerSecond },
      'node sends more status, events and QoS reports than limits.messagesPerSecond: dropping the excess',
    );
  }

  private async storeBatch(
    node: string,
    batch: NonNullable<NodeMessage__Output['batch']>,
    call: grpc.ServerDuplexStream<NodeMessage__Output, TowerMessage>,
    latestMs: number,
  ): Promise<boolean> {
    let decoded: IngestBatch;
    const clamped = { times: 0 };
    try {
      decoded = decodeBatch(node, batch, this.places, { latestMs, clamped });
    } catch (err) {
      if (!(err instanceof BadBatch)) throw err;
      // Refused, and acknowledged: a batch that can never be stored must not be resent forever.
      this.counters.badMessages++;
      log.warn({ node, err, firstSeq: batch.firstSeq }, 'batch refused');
      call.write({ ack: { lastSeq: batch.lastSeq } });
      return true;
    }
    if (clamped.times) {
      this.counters.timesClamped += clamped.times;
      log.warn({ node, records: clamped.times }, 'record times ahead of the node clock clamped');
    }
    if (this.publish) {
      try {
        await this.publish(decoded);
      } catch (err) {
        // Not acknowledged: the node keeps the batch and sends it again.
        this.counters.busErrors++;
        if (!(err instanceof BusUnavailable))
          log.error({ node, err }, 'batch not on the bus; the node will resend it');
        return false;
      }
    } else {
      try {
        await this.commit(decoded);
      } catch (err) {
        log.error({ node, err }, 'batch not stored; the node will resend it');
        return false;
      }
    }
    call.write({ ack: { lastSeq: batch.lastSeq } });
    return true;
  }

  /**
   * Stores a decoded batch (the records not stored yet), counts it and hands it to the
   * listeners; throws when the store fails. The control plane calls it for each batch, or,
   * with a bus, the bus's writer for each batch it reads.
   */
  async commit(decoded: IngestBatch): Promise<number> {
    const node = decoded.node;
    let added: number;
    const gapsBefore = this.store.stored.get(node)?.closedGaps ?? 0;
    try {
      added = await this.store.append(decoded);
    } catch (err) {
      this.counters.storeErrors++;
      throw err;
    }
    const gaps = (this.store.stored.get(node)?.closedGaps ?? 0) - gapsBefore;
    if (gaps > 0) {
      this.counters.seqGapsClosed += gaps;
      log.warn({ node, gaps }, 'too many gaps in the seqs stored of a node: the oldest closed');
    }
    const total = decoded.flows.length + decoded.http.length + decoded.stats.length;
    this.counters.batches++;
    this.counters.recordsStored += added;
    this.counters.recordsDuplicate += total - added;
    this.registry.seen(node, added);
    for (const listener of this.listeners) listener(decoded);
    return added;
  }

  /**
   * Ends every node stream open (this tower lost the leader lease): each node is told, as a
   * standby tells it, and moves to the new leader, resending what was not acknowledged.
   */
  endStreams(standby: Standby): number {
    const ends = [...this.open.values()];
    this.open.clear();
    for (const end of ends) end(standby);
    if (ends.length) log.warn({ streams: ends.length, reason: standby.reason }, 'node streams ended');
    return ends.length;
  }

  async close(): Promise<void> {
    clearInterval(this.revokedTimer);
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }

  forceClose(): void {
    clearInterval(this.revokedTimer);
    this.server.forceShutdown();
  }
}
