/**
 * The modem side of DLEP (RFC 8175), as a testbed radio: answers Peer Discovery with a Peer
 * Offer, accepts one router session at a time, and reports its radio neighbours as
 * destinations with the rate, latency and quality the testbed emulates on the link. Changing
 * the emulated link sends a Destination Update; cutting it, a Destination Down.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import {
  DLEP_DISCOVERY_GROUP,
  DlepDecodeError,
  type DlepMessage,
  decodeSignal,
  encodeMessage,
  encodeSignal,
  Item,
  item,
  type LinkMetrics,
  Message,
  MessageReader,
  metricItems,
  Signal,
  Status,
} from '../../node/mesh/dlep/codec.js';

export interface ModemOptions {
  /** The address the router reaches the modem on (TCP session and Peer Offer). */
  address: string;
  /** TCP port of the session (0: any free one). */
  port?: number;
  /** UDP port of discovery (0: none; the router is told the connection point). */
  discoveryPort?: number;
  heartbeatMs?: number;
  /** The radio's defaults, sent in the Session Initialization Response. */
  sessionMetrics: LinkMetrics;
}

interface Neighbour {
  mac: string;
  addresses: string[];
  metrics: LinkMetrics;
}

export class DlepModem {
  private readonly neighbours = new Map<string, Neighbour>();
  private session: Socket | undefined;
  private sessionUp = false;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Sessions refused or ended for what the router sent. */
  protocolErrors = 0;

  private constructor(
    private readonly options: ModemOptions,
    private readonly server: Server,
    private readonly discovery: UdpSocket | undefined,
  ) {}

  static async start(options: ModemOptions): Promise<DlepModem> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, options.address, () => resolve());
    });
    let discovery: UdpSocket | undefined;
    if (options.discoveryPort !== undefined && options.discoveryPort !== 0) {
      discovery = createSocket({ type: 'udp4', reuseAddr: true });
      await new Promise<void>((r) => discovery?.bind(options.discoveryPort, () => r()));
      try {
        discovery.addMembership(DLEP_DISCOVERY_GROUP, options.address);
      } catch {
        // unicast discovery still works on an interface without multicast
      }
    }
    const modem = new DlepModem(options, server, discovery);
    server.on('connection', (s) => modem.accept(s));
    discovery?.on('message', (msg, from) => modem.offer(msg, from.address, from.port));
    return modem;
  }

  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  private offer(msg: Buffer, address: string, port: number): void {
    try {
      if (decodeSignal(msg).type !== Signal.PeerDiscovery) return;
    } catch {
      return;
    }
    const offer = encodeSignal({
      type: Signal.PeerOffer,
      items: [item.peerType('tacmesh testbed radio'), item.connectionPoint(this.options.address, this.port)],
    });
    this.discovery?.send(offer, port, address);
  }

  private accept(socket: Socket): void {
    // One router per modem: a new session replaces the old (a restarted router).
    this.session?.destroy();
    this.session = socket;
    this.sessionUp = false;
    const reader = new MessageReader();
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.session === socket) this.endSession();
    });
    socket.on('data', (chunk) => {
      try {
        for (const m of reader.push(chunk)) this.handle(socket, m);
      } catch (err) {
        if (!(err instanceof DlepDecodeError)) throw err;
        this.protocolErrors++;
        this.write(socket, Message.SessionTermination, [item.status(Status.InvalidData, err.message)]);
        socket.end();
      }
    });
  }

  private write(socket: Socket, type: number, items: DlepMessage['items']): void {
    if (!socket.destroyed) socket.write(encodeMessage({ type, items }));
  }

  private handle(socket: Socket, m: DlepMessage): void {
    if (m.type === Message.SessionInitialization) {
      const heartbeatMs = this.options.heartbeatMs ?? 1000;
      this.write(socket, Message.SessionInitializationResponse, [
        item.status(Status.Success),
        item.u32(Item.HeartbeatInterval, heartbeatMs),
        item.peerType('tacmesh testbed radio'),
        ...metricItems(this.options.sessionMetrics),
      ]);
      this.sessionUp = true;
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => this.write(socket, Message.Heartbeat, []), heartbeatMs);
      for (const n of this.neighbours.values()) this.sendUp(n);
      return;
    }
    if (!this.sessionUp) {
      this.protocolErrors++;
      this.write(socket, Message.SessionTermination, [item.status(Status.UnexpectedMessage)]);
      socket.end();
      return;
    }
    if (m.type === Message.SessionTermination) {
      this.write(socket, Message.SessionTerminationResponse, []);
      socket.end();
    }
    // Heartbeats and the responses to our messages need no answer.
  }

  private sendUp(n: Neighbour): void {
    if (!this.session || !this.sessionUp) return;
    this.write(this.session, Message.DestinationUp, [
      item.mac(n.mac),
      ...n.addresses.map((a) => item.ipv4(a)),
      ...metricItems(n.metrics),
    ]);
  }

  /** A neighbour in radio range: Destination Up. */
  destinationUp(mac: string, addresses: string[], metrics: LinkMetrics): void {
    const n = { mac, addresses, metrics };
    this.neighbours.set(mac, n);
    this.sendUp(n);
  }

  /** The link to a neighbour changed: Destination Update with the new metrics. */
  destinationUpdate(mac: string, metrics: LinkMetrics): void {
    const n = this.neighbours.get(mac);
    if (!n) throw new Error(`no neighbour ${mac} is up on this radio`);
    n.metrics = { ...n.metrics, ...metrics };
    if (this.session && this.sessionUp)
      this.write(this.session, Message.DestinationUpdate, [item.mac(mac), ...metricItems(metrics)]);
  }

  /** The neighbour is out of range (the link is cut): Destination Down. */
  destinationDown(mac: string): void {
    if (!this.neighbours.delete(mac)) return;
    if (this.session && this.sessionUp) this.write(this.session, Message.DestinationDown, [item.mac(mac)]);
  }

  private endSession(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    this.session = undefined;
    this.sessionUp = false;
  }

  async close(): Promise<void> {
    const session = this.session;
    this.endSession();
    this.discovery?.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      session?.destroy();
    });
  }
}
