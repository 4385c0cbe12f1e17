/**
 * The control plane's tower end: gRPC over mutual TLS only. A node's certificate must come
 * from our CA (else the TLS handshake fails, and is logged), carry the node role, and name
 * the node its hello claims. Each node stream: hello → welcome, then batches stored and
 * acknowledged in order, status and agent events recorded, monitoring settings pushed.
 */
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import {
  type NodeMessage__Output,
  proto,
  SCHEMA_VERSION,
  type TowerHandlers,
  type TowerMessage,
} from '../../proto/index.js';
import { log } from '../../shared/log.js';
import { BadBatch, decodeBatch } from '../ingest/decode.js';
import type { LocalityMap } from '../ingest/locality.js';
import type { IngestBatch, MonitorSettings } from '../model.js';
import type { QosPush, QosService } from '../qos/service.js';
import type { Registry } from '../registry.js';
import type { DuckStore } from '../store/duckdb.js';

export interface TlsFiles {
  caCert: string;
  cert: string;
  key: string;
}

export interface ControlCounters {
  tlsRefused: number;
  identityRefused: number;
  badMessages: number;
  recordsStored: number;
  recordsDuplicate: number;
  storeErrors: number;
  batches: number;
}

/** Extra consumers of every stored batch (the InfluxDB sink, the live dashboard feed). */
export type BatchListener = (batch: IngestBatch) => void;

const CLOCK_SKEW_WARN_MS = 2000;
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export function toWireMonitor(s: MonitorSettings) {
  return { l3: s.l3, l4: s.l4, l7: s.l7, sample: s.sample, intervalMs: s.intervalMs, version: s.version };
}

export class ControlServer {
  readonly counters: ControlCounters = {
    tlsRefused: 0,
    identityRefused: 0,
    badMessages: 0,
    recordsStored: 0,
    recordsDuplicate: 0,
    storeErrors: 0,
    batches: 0,
  };
  private readonly server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
  });
  private readonly listeners: BatchListener[] = [];
  private readonly watched = new WeakSet<NodeJS.EventEmitter>();

  constructor(
    private readonly registry: Registry,
    private readonly store: DuckStore,
    private readonly places: LocalityMap,
    private readonly allowedNodes: Set<string> | null = null,
    /** The QoS policy pushed to nodes and their counters; none: no QoS. */
    private readonly qos?: QosService,
  ) {
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
    return port;
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
        log.warn({ peer: socket.remoteAddress, reason: err.message }, 'control plane: TLS handshake refused');
      });
    }
  }

  private async serve(call: grpc.ServerDuplexStream<NodeMessage__Output, TowerMessage>): Promise<void> {
    const peer = call.getPeer();
    const cert = call.getAuthContext()?.sslPeerCertificate;
    const certName = cert?.subject?.CN;
    const certRole = cert?.subject?.OU;
    const refuse = (code: grpc.status, reason: string, counter: keyof ControlCounters) => {
      this.counters[counter]++;
      log.warn({ peer, certName, reason }, 'control plane: node refused');
      call.write({ refusal: { reason } });
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
    let node: string | undefined;
    let push: ((s: MonitorSettings) => void) | undefined;
    const qosPush: QosPush = (policy) => call.write({ qosPolicy: policy });
    try {
      for await (const msg of call as AsyncIterable<NodeMessage__Output>) {
        if (msg.hello) {
          const h = msg.hello;
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
          const skew = h.clockMs ? Date.now() - h.clockMs : 0;
          if (Math.abs(skew) > CLOCK_SKEW_WARN_MS)
            log.warn({ node: h.node, skewMs: skew }, 'node clock differs from the tower');
          push = (settings) => call.write({ monitorConfig: toWireMonitor(settings) });
          const state = await this.registry.hello(
            {
              name: h.node,
              subnets: h.subnets,
              slices: h.slices.map((s) => ({ name: s.name, subnets: s.subnets, bridge: s.bridge })),
              position: h.position && (h.position.lat !== 0 || h.position.lon !== 0) ? h.position : null,
              software: h.software,
              clockSkewMs: skew,
            },
            push,
          );
          node = h.node;
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
          if (!(await this.storeBatch(node, msg.batch, call))) {
            // End the stream: the node reconnects and resends everything not acknowledged.
            call.emit('error', {
              code: grpc.status.UNAVAILABLE,
              details: 'the tower could not store a batch',
            });
            return;
          }
        } else if (msg.status) {
          await this.registry.status(node, {
            timeMs: msg.status.timeMs,
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
            timeMs: e.timeMs,
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
      log.info({ node, peer, reason: (err as Error).message }, 'node stream ended with an error');
    } finally {
      if (node && push) {
        this.registry.disconnected(node, push);
        this.qos?.disconnect(node, qosPush);
        log.info({ node }, 'node disconnected');
      }
    }
  }

  private async storeBatch(
    node: string,
    batch: NonNullable<NodeMessage__Output['batch']>,
    call: grpc.ServerDuplexStream<NodeMessage__Output, TowerMessage>,
  ): Promise<boolean> {
    let decoded: IngestBatch;
    try {
      decoded = decodeBatch(node, batch, this.places);
    } catch (err) {
      if (!(err instanceof BadBatch)) throw err;
      // Refused, and acknowledged: a batch that can never be stored must not be resent forever.
      this.counters.badMessages++;
      log.warn({ node, reason: err.message, firstSeq: batch.firstSeq }, 'batch refused');
      call.write({ ack: { lastSeq: batch.lastSeq } });
      return true;
    }
    let added: number;
    try {
      added = await this.store.append(decoded);
    } catch (err) {
      // Not acknowledged: the node keeps the batch and sends it again.
      this.counters.storeErrors++;
      log.error({ node, reason: (err as Error).message }, 'batch not stored; the node will resend it');
      return false;
    }
    const total = decoded.flows.length + decoded.http.length + decoded.stats.length;
    this.counters.batches++;
    this.counters.recordsStored += added;
    this.counters.recordsDuplicate += total - added;
    this.registry.seen(node, added);
    call.write({ ack: { lastSeq: batch.lastSeq } });
    for (const listener of this.listeners) listener(decoded);
    return true;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }

  forceClose(): void {
    this.server.forceShutdown();
  }
}
