/**
 * Keeps the control plane on the management network: gRPC cannot bind its connection to a
 * source address, so the node connects through a local relay that opens every connection to
 * the tower from the management address. TLS runs end to end through it.
 */
import { networkInterfaces } from 'node:os';

/** The first IPv4 (else IPv6) address of an interface in this namespace. */
export function addressOf(iface: string): string {
  const addrs = networkInterfaces()[iface];
  if (!addrs?.length) throw new Error(`management interface ${iface} has no address (or does not exist)`);
  const v4 = addrs.find((a) => a.family === 'IPv4');
  return (v4 ?? addrs[0])?.address ?? '';
}
