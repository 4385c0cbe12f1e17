/**
 * Keeps the control plane on the management network: gRPC cannot bind its connection to a
 * source address, so the node connects through a local relay that opens every connection to
 * the tower from the management address. TLS runs end to end through it.
 */
import { execFileSync } from 'node:child_process';

interface IpAddr {
  addr_info?: { family: string; local: string; scope: string }[];
}

/**
 * The first IPv4 (else IPv6) address of an interface in this namespace. Asked of `ip`, not
 * os.networkInterfaces(): libuv leaves out interfaces without carrier, and a node started
 * while its management link is down must still start (and spool until the link is back).
 */
export function addressOf(iface: string): string {
  let info: IpAddr[] = [];
  try {
    info = JSON.parse(
      execFileSync('ip', ['-j', 'addr', 'show', 'dev', iface], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    ) as IpAddr[];
  } catch {
    // no such interface: named below
  }
  const addrs = (info[0]?.addr_info ?? []).filter((a) => a.scope !== 'link');
  const found = addrs.find((a) => a.family === 'inet') ?? addrs[0];
  if (!found) throw new Error(`management interface ${iface} has no address (or does not exist)`);
  return found.local;
}
