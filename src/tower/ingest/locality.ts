/**
 * Where an address lives: on which node (longest prefix among the subnets every node
 * registered, plus the site file's), at which position (the node's, a site CIDR's, or an
 * operator-supplied .mmdb's), and so which locality a flow has: both ends on one node
 * (intra), on two nodes (inter), or anything else (external).
 */
import ipaddr from 'ipaddr.js';
import type { Locality, Position } from '../model.js';

interface Prefix {
  net: ipaddr.IPv4 | ipaddr.IPv6;
  bits: number;
  /** Registered by a node's hello (replaced on its next hello), or from the site file (kept). */
  origin: 'hello' | 'site';
  node?: string;
  position?: Position;
  label?: string;
}

export interface Endpoint {
  node: string | null;
  position: Position | null;
  label: string | null;
}

/** An optional lookup for addresses no subnet or site entry covers (the .mmdb reader). */
export type GeoLookup = (ip: string) => Position | null;

const CACHE_MAX = 100_000;

export class LocalityMap {
  private prefixes: Prefix[] = [];
  private readonly nodePositions = new Map<string, Position>();
  private readonly cache = new Map<string, Endpoint>();

  constructor(private readonly geo: GeoLookup | null = null) {}

  private add(cidr: string, extra: Omit<Prefix, 'net' | 'bits'>): void {
    let parsed: [ipaddr.IPv4 | ipaddr.IPv6, number];
    try {
      parsed = ipaddr.parseCIDR(cidr);
    } catch {
      throw new Error(`"${cidr}" is not a CIDR prefix (e.g. 10.77.1.0/24 or fd00:77::/64)`);
    }
    this.prefixes.push({ net: parsed[0], bits: parsed[1], ...extra });
    // Longest prefix first, so the first match wins.
    this.prefixes.sort((a, b) => b.bits - a.bits);
    this.cache.clear();
  }

  /** A node's registered subnets replace what it registered before. */
  setNode(node: string, subnets: string[], position: Position | null): void {
    this.prefixes = this.prefixes.filter((p) => p.origin === 'site' || p.node !== node);
    for (const cidr of subnets) this.add(cidr, { origin: 'hello', node });
    if (position) this.nodePositions.set(node, position);
    this.cache.clear();
  }

  /** A site-file entry: a subnet of a node, or a CIDR with a position (and a label). */
  addSite(cidr: string, entry: { node?: string; position?: Position; label?: string }): void {
    this.add(cidr, { origin: 'site', ...entry });
  }

  nodePosition(node: string): Position | null {
    return this.nodePositions.get(node) ?? null;
  }

  endpoint(ip: string): Endpoint {
    const hit = this.cache.get(ip);
    if (hit) return hit;
    let addr: ipaddr.IPv4 | ipaddr.IPv6 | null = null;
    try {
      addr = ipaddr.parse(ip);
      if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
        addr = (addr as ipaddr.IPv6).toIPv4Address();
      }
    } catch {
      addr = null;
    }
    let node: string | null = null;
    let position: Position | null = null;
    let label: string | null = null;
    if (addr) {
      for (const p of this.prefixes) {
        if (p.net.kind() !== addr.kind() || !addr.match(p.net, p.bits)) continue;
        if (p.node && !node) node = p.node;
        if (p.position && !position) position = p.position;
        if (p.label && !label) label = p.label;
      }
    }
    if (node && !position) position = this.nodePositions.get(node) ?? null;
    if (!position && this.geo) position = this.geo(ip);
    const result = { node, position, label };
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(ip, result);
    return result;
  }

  classify(src: string, dst: string): { locality: Locality; srcNode: string | null; dstNode: string | null } {
    const s = this.endpoint(src).node;
    const d = this.endpoint(dst).node;
    const locality: Locality = s && d ? (s === d ? 'intra' : 'inter') : 'external';
    return { locality, srcNode: s, dstNode: d };
  }
}
