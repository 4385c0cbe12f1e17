/**
 * A TCP relay: listens on one address and joins each client to a connection to the target,
 * optionally opened from a given source address, or to one the caller supplies. Used to
 * keep the control plane on the management network (the node binds its outgoing
 * connections to the management address), to carry a neighbour's control plane to the
 * tower over the mesh (only from that neighbour, to the tower only), and to reach the
 * testbed's tower, inside its namespace, from the host's 127.0.0.1. Bytes only: TLS runs
 * end to end through it.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { log } from './log.js';

export interface Relay {
  /** host:port the relay listens on. */
  address: string;
  readonly counters: { joined: number; refused: number };
  close(): Promise<void>;
}

export interface RelayOptions {
  /** host:port to listen on (default 127.0.0.1 and a free port). */
  listen?: string;
  /** The source address of the connections to the target. */
  localAddress?: string;
  /** Clients whose address this refuses are closed at once (counted). */
  allow?: (remoteAddress: string) => boolean;
  /** Clients beyond this many at once are closed at once (counted). */
  maxClients?: number;
  /** The connection to join a client to, instead of a new one to the target. */
  upstream?: () => Socket;
}

export function splitHostPort(v: string): { host: string; port: number } {
  const at = v.lastIndexOf(':');
  const host = v.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(v.slice(at + 1));
  if (!host || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`"${v}" is not host:port`);
  return { host, port };
}

export async function startRelay(target: string, options: RelayOptions = {}): Promise<Relay> {
  const { host, port } = splitHostPort(target);
  const listen = splitHostPort(options.listen ?? '127.0.0.1:0');
  const counters = { joined: 0, refused: 0 };
  const clients = new Set<Socket>();
  const open =
    options.upstream ??
    (() => connect({ host, port, ...(options.localAddress ? { localAddress: options.localAddress } : {}) }));
  const server: Server = createServer((inbound) => {
    const from = inbound.remoteAddress ?? '';
    if ((options.allow && !options.allow(from)) || clients.size >= (options.maxClients ?? Infinity)) {
      counters.refused++;
      log.warn({ from, target }, 'relay: client refused');
      inbound.destroy();
      return;
    }
    counters.joined++;
    clients.add(inbound);
    const outbound = open();
    inbound.pipe(outbound).pipe(inbound);
    const drop = (err?: Error) => {
      if (err) log.debug({ err, target }, 'relay connection closed');
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', drop);
    outbound.on('error', drop);
    inbound.on('close', () => {
      clients.delete(inbound);
      outbound.destroy();
    });
    outbound.on('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot listen on ${listen.host}:${listen.port}: ${err.code ?? err.message}`)),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('relay did not bind');
  return {
    address: `${listen.host}:${addr.port}`,
    counters,
    close: () =>
      new Promise((resolve) => {
        for (const c of clients) c.destroy();
        server.close(() => resolve());
      }),
  };
}
