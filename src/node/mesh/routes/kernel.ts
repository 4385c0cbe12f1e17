/**
 * The kernel's main IPv4 routing table (`ip -j route`, netlink underneath), for nodes where
 * no routing daemon answers: each unicast route's destination, gateway, device and priority.
 * A route without a gateway is the node's own (connected) prefix.
 */
import { run } from '../../../shared/exec.js';

export interface KernelRoute {
  prefix: string;
  /** The gateway; empty for a connected route. */
  via: string;
  iface: string;
  metric: number;
}

interface IpRoute {
  type?: string;
  dst?: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  nexthops?: { gateway?: string; dev?: string }[];
}

/** `ip -j route` output → routes; multipath routes by their first next hop, non-unicast ones left out. */
export function parseIpRoutes(json: string): KernelRoute[] {
  const rows = JSON.parse(json) as IpRoute[];
  if (!Array.isArray(rows)) throw new Error('ip -j route did not give a list');
  const out: KernelRoute[] = [];
  for (const r of rows) {
    if ((r.type && r.type !== 'unicast') || !r.dst) continue;
    const prefix = r.dst === 'default' ? '0.0.0.0/0' : r.dst.includes('/') ? r.dst : `${r.dst}/32`;
    const hop = r.nexthops?.[0] ?? r;
    out.push({ prefix, via: hop.gateway ?? '', iface: hop.dev ?? '', metric: r.metric ?? 0 });
  }
  return out;
}

export async function kernelRoutes(): Promise<KernelRoute[]> {
  const { stdout } = await run('ip', ['-j', '-4', 'route', 'show', 'table', 'main'], { timeoutMs: 5000 });
  return parseIpRoutes(stdout);
}
