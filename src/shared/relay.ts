/**
 * A TCP relay: listens on one address and opens a connection to the target for each
 * client, optionally from a given source address. Used to keep the control plane on the
 * management network (the node binds its outgoing connections to the management address)
 * and to reach the testbed's tower, inside its namespace, from the host's 127.0.0.1.
 */
import { connect, createServer, type Server } from 'node:net';
import { log } from './log.js';

export interface Relay {
  /** host:port the relay listens on. */
  address: string;
  close(): Promise<void>;
}

export function splitHostPort(v: string): { host: string; port: number } {
  const at = v.lastIndexOf(':');
  const host = v.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(v.slice(at + 1));
  if (!host || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`"${v}" is not host:port`);
  return { host, port };
}

export async function startRelay(
  target: string,
  options: { listen?: string; localAddress?: string } = {},
): Promise<Relay> {
  const { host, port } = splitHostPort(target);
  const listen = splitHostPort(options.listen ?? '127.0.0.1:0');
  const server: Server = createServer((inbound) => {
    const outbound = connect({
      host,
      port,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    inbound.pipe(outbound).pipe(inbound);
    const drop = (err?: Error) => {
      if (err) log.debug({ err, target }, 'relay connection closed');
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', drop);
    outbound.on('error', drop);
    inbound.on('close', () => outbound.destroy());
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
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
