/**
 * Where an address lives: on which node (longest prefix among the subnets every node
 * registered, plus the site file's), at which position (the node's, a site CIDR's, or an
 * operator-supplied .mmdb's), and so which locality a flow has: both ends on one node
 * (intra), on two nodes (inter), or anything else (external).
 *
 * The prefixes are kept per node and indexed once per change, by length then by masked
 * network: a lookup is one hash probe per prefix length in use, whatever the number of
 * prefixes, and registering a node's subnets costs their number, not a sort of them all.
 */
import type { Locality, Position } from '../model.js';
import { addressBytes, type Cidr, type Kind, maskedKey, parseCidr } from './prefix.js';

export interface Prefix {
  cidr: Cidr;
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

interface Index {
  /** Per kind: the prefix lengths in use, longest first. */
  lengths: Record<Kind, number[]>;
  /** `${kind}/${bits}/${masked network}` → the prefixes there, site entries first. */
  byKey: Map<string, Prefix[]>;
}

export class LocalityMap {
  private readonly site: Prefix[] = [];
  private readonly byNode = new Map<string, Prefix[]>();
  private readonly nodePositions = new Map<string, Position>();
  private readonly cache = new Map<string, Endpoint>();
  private index: Index | undefined;

  constructor(private readonly geo: GeoLookup | null = null) {}

  private changed(): void {
    this.index = undefined;
    this.cache.clear();
  }

  /** A node's registered subnets replace what it registered before. */
  setNode(node: string, subnets: string[], position: Position | null): void {
    const prefixes = subnets.map((s): Prefix => ({ cidr: parseCidr(s), origin: 'hello', node }));
    if (prefixes.length) this.byNode.set(node, prefixes);
    else this.byNode.delete(node);
    if (position) this.nodePositions.set(node, position);
    this.changed();
  }

  /** A site-file entry: a subnet of a node, or a CIDR with a position (and a label). */
  addSite(cidr: string, entry: { node?: string; position?: Position; label?: string }): void {
    this.site.push({ cidr: parseCidr(cidr), origin: 'site', ...entry });
    this.changed();
  }

  /** Every prefix that places an address on a node other than `node`. */
  othersSubnets(node: string): Prefix[] {
    const out = this.site.filter((p) => p.node && p.node !== node);
    for (const [n, prefixes] of this.byNode) if (n !== node) out.push(...prefixes);
    return out;
  }

  nodePosition(node: string): Position | null {
    return this.nodePositions.get(node) ?? null;
  }

  private built(): Index {
    if (this.index) return this.index;
    const byKey = new Map<string, Prefix[]>();
    const lengths: Record<Kind, Set<number>> = { ipv4: new Set(), ipv6: new Set() };
    for (const p of [this.site, ...this.byNode.values()].flat()) {
      const key = `${p.cidr.kind}/${p.cidr.bits}/${maskedKey(p.cidr.bytes, p.cidr.bits)}`;
      const at = byKey.get(key);
      if (at) at.push(p);
      else byKey.set(key, [p]);
      lengths[p.cidr.kind].add(p.cidr.bits);
    }
    const desc = (s: Set<number>) => [...s].sort((a, b) => b - a);
    this.index = { byKey, lengths: { ipv4: desc(lengths.ipv4), ipv6: desc(lengths.ipv6) } };
    return this.index;
  }

  endpoint(ip: string): Endpoint {
    const hit = this.cache.get(ip);
    if (hit) return hit;
    let node: string | null = null;
    let position: Position | null = null;
    let label: string | null = null;
    const addr = addressBytes(ip);
    if (addr) {
      const { byKey, lengths } = this.built();
      for (const bits of lengths[addr.kind]) {
        for (const p of byKey.get(`${addr.kind}/${bits}/${maskedKey(addr.bytes, bits)}`) ?? []) {
          if (p.node && !node) node = p.node;
          if (p.position && !position) position = p.position;
          if (p.label && !label) label = p.label;
        }
        if (node && position && label) break;
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
