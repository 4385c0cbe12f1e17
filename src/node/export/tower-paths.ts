/**
 * The ways from a node to its tower: directly over the management network, or — when that
 * path is gone and mesh.relay is on — through a neighbour over the mesh, whose relay
 * forwards the bytes to the tower (TLS stays end to end; docs/mesh.md). gRPC cannot pick a
 * path or a source address, so it connects to a local relay, and each connection it opens
 * is joined to the one `choose` opened last: a path is chosen by connecting over it.
 */
import { connect, type Socket } from 'node:net';
import { nodeLog as log } from '../../shared/log.js';
import { type Relay, splitHostPort, startRelay } from '../../shared/relay.js';

export interface TowerRoute {
  /** The neighbour's address, or null for the direct path. */
  via: string | null;
  host: string;
  port: number;
  localAddress?: string;
}

/** A connection `choose` opened and gRPC has not taken yet is closed after this long. */
const HELD_MS = 5000;

export interface TowerPathsOptions {
  /** host:port of the tower. */
  tower: string;
  /** The management address to connect from, when there is one. */
  localAddress?: string;
  /** Through the mesh: each neighbour's relay port, and the neighbours to try, best first. */
  relays?: { port: number; neighbours: () => string[] };
  /** How long a connection attempt over one path may take. */
  connectTimeoutMs: number;
}

export class TowerPaths {
  private relay: Relay | undefined;
  private held: { socket: Socket; timer: NodeJS.Timeout } | undefined;
  private direct: TowerRoute;
  current: TowerRoute;

  constructor(private readonly options: TowerPathsOptions) {
    const { host, port } = splitHostPort(options.tower);
    this.direct = {
      via: null,
      host,
      port,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    };
    this.current = this.direct;
  }

  /** Another tower (a standby's leader, docs/bus.md): the direct path goes there from now on. */
  setTower(tower: string): void {
    const onDirect = this.current === this.direct;
    this.direct = { ...this.direct, ...splitHostPort(tower) };
    if (onDirect) this.current = this.direct;
    this.drop();
  }

  /** Listens on loopback for gRPC; returns the address to give it. */
  async start(): Promise<string> {
    this.relay = await startRelay(this.options.tower, { upstream: () => this.take() });
    return this.relay.address;
  }

  private routes(): TowerRoute[] {
    const relays = this.options.relays;
    if (!relays) return [this.direct];
    return [this.direct, ...relays.neighbours().map((n) => ({ via: n, host: n, port: relays.port }))];
  }

  /**
   * Opens a connection over each path in turn, the direct one first, and keeps the first
   * that connects for gRPC's next connection. Undefined when none does. (A connection
   * opened only to see and then closed would reach the tower as a failed TLS handshake.)
   */
  async choose(): Promise<TowerRoute | undefined> {
    // One opened already (the direct path found back): used, rather than opening another.
    if (this.held) return this.current;
    const tried: string[] = [];
    for (const route of this.routes()) {
      const socket = await open(route, this.options.connectTimeoutMs).catch((err: Error) => {
        tried.push(`${route.via ?? 'direct'}: ${err.message}`);
        return undefined;
      });
      if (!socket) continue;
      this.hold(socket);
      this.current = route;
      return route;
    }
    log.warn({ tried }, 'no path to the tower');
    return undefined;
  }

  /** Whether the direct path connects again; if so, that connection is kept for the next use. */
  async directBack(): Promise<boolean> {
    const socket = await open(this.direct, this.options.connectTimeoutMs).catch(() => undefined);
    if (!socket) return false;
    this.hold(socket);
    this.current = this.direct;
    return true;
  }

  private hold(socket: Socket): void {
    this.drop();
    socket.on('error', () => socket.destroy());
    this.held = { socket, timer: setTimeout(() => this.drop(), HELD_MS) };
  }

  private drop(): void {
    if (!this.held) return;
    clearTimeout(this.held.timer);
    this.held.socket.destroy();
    this.held = undefined;
  }

  /** The connection for gRPC: the one chosen, else a new one over the current path. */
  private take(): Socket {
    const held = this.held;
    if (held) {
      clearTimeout(held.timer);
      this.held = undefined;
      return held.socket;
    }
    return connect(connectOptions(this.current));
  }

  async close(): Promise<void> {
    this.drop();
    await this.relay?.close();
  }
}

function connectOptions(r: TowerRoute) {
  return { host: r.host, port: r.port, ...(r.localAddress ? { localAddress: r.localAddress } : {}) };
}

/** A TCP connection over `route`, or the reason there is none within `timeoutMs`. */
function open(route: TowerRoute, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(connectOptions(route));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no connection in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(err.code ?? err.message));
    });
  });
}
