/**
 * The router side of DLEP (RFC 8175): finds the modem (Peer Discovery / Peer Offer, §7.1),
 * holds the TCP session (Session Initialization, heartbeats, §7.2–7.3), and keeps the modem's
 * destinations — each radio neighbour's MAC, addresses and link metrics — from Destination
 * Up / Update / Down (§7.4–7.6). A session that goes quiet for two of the modem's heartbeat
 * intervals, or ends, takes every destination down with it: the router must not route over
 * a radio it cannot hear. A peer that sends what it must not is told why and disconnected.
 */
import { createSocket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import {
  connectionPointOf,
  DLEP_DISCOVERY_GROUP,
  DLEP_PORT,
  DlepDecodeError,
  type DlepMessage,
  decodeSignal,
  encodeMessage,
  encodeSignal,
  heartbeatOf,
  Item,
  ipv4AddressesOf,
  item,
  type LinkMetrics,
  Message,
  MessageReader,
  macOf,
  metricsOf,
  Signal,
  Status,
  statusOf,
} from './codec.js';

export interface Destination {
  mac: string;
  addresses: string[];
  /** The destination's own metrics over the session's defaults. */
  metrics: LinkMetrics;
  upSinceMs: number;
}

export interface RouterEvents {
  'session-up': [];
  'session-down': [reason: string];
  'destination-up': [Destination];
  'destination-update': [Destination];
  'destination-down': [Destination];
}

export interface DlepRouterOptions {
  /** The modem's connection point (from discover(), or configured). */
  address: string;
  port?: number;
  /** Our heartbeat interval (RFC: at least 1 s; default 1000 ms). */
  heartbeatMs?: number;
  peerType?: string;
}

/** Sends Peer Discovery from `localAddress` and resolves with the first Peer Offer's connection point. */
export async function discoverModem(options: {
  localAddress: string;
  target?: string;
  port?: number;
  timeoutMs?: number;
}): Promise<{ address: string; port: number }> {
  const socket = createSocket('udp4');
  try {
    await new Promise<void>((r) => socket.bind(0, options.localAddress, () => r()));
    const target = options.target ?? DLEP_DISCOVERY_GROUP;
    if (target === DLEP_DISCOVERY_GROUP) socket.setMulticastInterface(options.localAddress);
    const offer = new Promise<{ address: string; port: number }>((resolve) => {
      socket.on('message', (msg, from) => {
        try {
          const s = decodeSignal(msg);
          if (s.type !== Signal.PeerOffer) return;
          resolve(connectionPointOf(s) ?? { address: from.address, port: DLEP_PORT });
        } catch {
          // not a DLEP signal: ignore
        }
      });
    });
    const discovery = encodeSignal({ type: Signal.PeerDiscovery, items: [item.peerType('tacmesh node')] });
    const timeoutMs = options.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    // The RFC has the router repeat discovery until it is answered.
    for (;;) {
      socket.send(discovery, options.port ?? DLEP_PORT, target);
      const got = await Promise.race([
        offer,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000)),
      ]);
      if (got) return got;
      if (Date.now() > deadline) throw new Error(`no DLEP Peer Offer from ${target} within ${timeoutMs} ms`);
    }
  } finally {
    socket.close();
  }
}

export class DlepRouter extends EventEmitter<RouterEvents> {
  readonly destinations = new Map<string, Destination>();
  /** The modem's defaults for every destination (Session Initialization Response, Session Update). */
  sessionMetrics: LinkMetrics = {};
  private socket: Socket | undefined;
  private reader = new MessageReader();
  private up = false;
  private lastHeard = 0;
  private modemHeartbeatMs = 0;
  private ticker: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: DlepRouterOptions) {
    super();
  }

  get sessionUp(): boolean {
    return this.up;
  }

  /** Opens the session; resolves once the modem accepted it. */
  async open(): Promise<void> {
    const socket = connect({ host: this.options.address, port: this.options.port ?? DLEP_PORT });
    this.socket = socket;
    this.reader = new MessageReader();
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const accepted = new Promise<void>((resolve, reject) => {
      this.once('session-up', resolve);
      this.once('session-down', (why) => reject(new Error(`the modem refused the DLEP session: ${why}`)));
    });
    socket.on('data', (chunk) => this.receive(chunk));
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => this.sessionDown('the modem closed the connection'));
    const heartbeatMs = this.options.heartbeatMs ?? 1000;
    this.send(Message.SessionInitialization, [
      item.u32(Item.HeartbeatInterval, heartbeatMs),
      item.peerType(this.options.peerType ?? 'tacmesh node'),
    ]);
    this.lastHeard = Date.now();
    this.ticker = setInterval(() => this.tick(), heartbeatMs);
    await accepted;
  }

  private send(type: number, items: DlepMessage['items']): void {
    this.socket?.write(encodeMessage({ type, items }));
  }

  private tick(): void {
    if (this.up) this.send(Message.Heartbeat, []);
    const quietMs = Date.now() - this.lastHeard;
    // Two missed heartbeats end the session (RFC 8175 §7.3); before the modem said its
    // interval, wait two of ours.
    const limit = 2 * (this.modemHeartbeatMs || (this.options.heartbeatMs ?? 1000));
    if (quietMs > limit) this.terminate(Status.TimedOut, `no word from the modem for ${quietMs} ms`);
  }

  private receive(chunk: Buffer): void {
    this.lastHeard = Date.now();
    let messages: DlepMessage[];
    try {
      messages = this.reader.push(chunk);
      for (const m of messages) this.handle(m);
    } catch (err) {
      if (!(err instanceof DlepDecodeError)) throw err;
      this.terminate(Status.InvalidData, err.message);
    }
  }

  private handle(m: DlepMessage): void {
    if (
      !this.up &&
      m.type !== Message.SessionInitializationResponse &&
      m.type !== Message.SessionTermination
    ) {
      this.terminate(Status.UnexpectedMessage, `message ${m.type} before the session was accepted`);
      return;
    }
    switch (m.type) {
      case Message.SessionInitializationResponse: {
        const status = statusOf(m);
        if (status && status.code !== Status.Success) {
          this.sessionDown(`status ${status.code} ${status.text}`.trim());
          this.socket?.destroy();
          return;
        }
        this.modemHeartbeatMs = heartbeatOf(m) ?? 0;
        this.sessionMetrics = metricsOf(m);
        this.up = true;
        this.emit('session-up');
        return;
      }
      case Message.SessionUpdate:
        this.sessionMetrics = { ...this.sessionMetrics, ...metricsOf(m) };
        this.send(Message.SessionUpdateResponse, [item.status(Status.Success)]);
        return;
      case Message.DestinationUp:
      case Message.DestinationUpdate: {
        const mac = macOf(m);
        if (!mac) throw new DlepDecodeError(`message ${m.type} without a MAC Address`);
        const known = this.destinations.get(mac);
        if (m.type === Message.DestinationUpdate && !known) return; // §7.5: ignore an unknown one
        const addresses = ipv4AddressesOf(m);
        const d: Destination = {
          mac,
          addresses: addresses.length ? addresses : (known?.addresses ?? []),
          metrics: { ...known?.metrics, ...metricsOf(m) },
          upSinceMs: known?.upSinceMs ?? Date.now(),
        };
        this.destinations.set(mac, d);
        if (m.type === Message.DestinationUp) {
          this.send(Message.DestinationUpResponse, [item.mac(mac), item.status(Status.Success)]);
          this.emit('destination-up', d);
        } else this.emit('destination-update', d);
        return;
      }
      case Message.DestinationDown: {
        const mac = macOf(m);
        if (!mac) throw new DlepDecodeError('Destination Down without a MAC Address');
        const d = this.destinations.get(mac);
        this.destinations.delete(mac);
        this.send(Message.DestinationDownResponse, [
          item.mac(mac),
          item.status(d ? Status.Success : Status.InvalidDestination),
        ]);
        if (d) this.emit('destination-down', d);
        return;
      }
      case Message.Heartbeat:
        return;
      case Message.SessionTermination:
        this.send(Message.SessionTerminationResponse, []);
        this.sessionDown(`the modem ended the session${statusOf(m)?.text ? `: ${statusOf(m)?.text}` : ''}`);
        this.socket?.end();
        return;
      default:
        this.terminate(Status.UnknownMessage, `unknown message type ${m.type}`);
    }
  }

  private terminate(code: number, why: string): void {
    this.send(Message.SessionTermination, [item.status(code, why)]);
    this.sessionDown(why);
    this.socket?.end();
    setTimeout(() => this.socket?.destroy(), 1000).unref();
  }

  private sessionDown(reason: string): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
    const wasUp = this.up;
    this.up = false;
    for (const d of this.destinations.values()) this.emit('destination-down', d);
    this.destinations.clear();
    if (wasUp || !this.closed) this.emit('session-down', reason);
    this.closed = true;
  }

  close(): void {
    if (this.up) this.send(Message.SessionTermination, [item.status(Status.ShuttingDown)]);
    this.sessionDown('closed by the router');
    this.socket?.end();
    this.socket?.destroy();
  }
}
