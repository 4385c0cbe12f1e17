/**
 * Keeps the control plane on the management network: gRPC cannot bind its connection to a
 * source address, so the node connects through this local relay, which opens every
 * connection to the tower from the management address. TLS runs end to end through it.
 */
import { connect, createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { log } from '../../shared/log.js';

/** The first IPv4 (else IPv6) address of an interface in this namespace. */
export function addressOf(iface: string): string {
  const addrs = networkInterfaces()[iface];
  if (!addrs?.length) throw new Error(`management interface ${iface} has no address (or does not exist)`);
  const v4 = addrs.find((a) => a.family === 'IPv4');
  return (v4 ?? addrs[0])?.address ?? '';
}

export interface Relay {
  /** 127.0.0.1:<port> to give gRPC instead of the tower's address. */
  address: string;
  close(): Promise<void>;
}

export async function startRelay(tower: string, localAddress: string): Promise<Relay> {
  const at = tower.lastIndexOf(':');
  const host = tower.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(tower.slice(at + 1));
  if (!host || !Number.isInteger(port)) throw new Error(`tower address "${tower}" is not host:port`);
  const server: Server = createServer((inbound) => {
    const outbound = connect({ host, port, localAddress });
    inbound.pipe(outbound).pipe(inbound);
    const drop = (err?: Error) => {
      if (err) log.debug({ reason: err.message }, 'management relay connection closed');
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', drop);
    outbound.on('error', drop);
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('relay did not bind');
  return {
    address: `127.0.0.1:${addr.port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
