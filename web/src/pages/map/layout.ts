/**
 * The map's data: one marker per position (a node, or a place an address was given), one
 * link per pair of positions with the address pairs and counts behind it.
 */
import type { Locality, MapData, Place, Position } from '../../api.js';

export interface Marker {
  key: string;
  name: string;
  kind: 'node' | 'place';
  position: Position;
  ips: Set<string>;
  conversations: number;
  connected?: boolean;
}

export interface Link {
  a: Marker;
  b: Marker;
  conversations: number;
  bytes: number;
  byLocality: Partial<Record<Locality, number>>;
  pairs: { src: string; dst: string; conversations: number; bytes: number }[];
}

const keyOf = (p: Position) => `${p.lat.toFixed(4)},${p.lon.toFixed(4)}`;

/** Markers (one per position) and links (one per pair of positions) from the API's pairs. */
export function layout(data: MapData) {
  const markers = new Map<string, Marker>();
  const unplaced = new Set<string>();
  const markerAt = (position: Position, name: string, kind: Marker['kind']): Marker => {
    const key = keyOf(position);
    let m = markers.get(key);
    if (!m) {
      m = { key, name, kind, position, ips: new Set(), conversations: 0 };
      markers.set(key, m);
    } else if (kind === 'node' && m.kind !== 'node') {
      m.kind = 'node';
      m.name = name;
    }
    return m;
  };
  for (const n of data.nodes) {
    if (!n.position) continue;
    const m = markerAt(n.position, n.name, 'node');
    m.connected = n.connected;
  }
  const place = (ip: string, p: Place): Marker | undefined => {
    if (!p.position) {
      unplaced.add(ip);
      return undefined;
    }
    const m = markerAt(p.position, p.node ?? p.label ?? ip, p.node ? 'node' : 'place');
    m.ips.add(ip);
    return m;
  };
  const links = new Map<string, Link>();
  for (const pair of data.pairs) {
    const a = place(pair.src, pair.srcPlace);
    const b = place(pair.dst, pair.dstPlace);
    if (!a || !b) continue;
    a.conversations += pair.conversations;
    if (b !== a) b.conversations += pair.conversations;
    if (a === b) continue;
    const key = [a.key, b.key].sort().join('|');
    let l = links.get(key);
    if (!l) {
      // Ends in a fixed order, so the line curves the same way on every refresh.
      const [first, second] = a.key < b.key ? [a, b] : [b, a];
      l = { a: first, b: second, conversations: 0, bytes: 0, byLocality: {}, pairs: [] };
      links.set(key, l);
    }
    l.conversations += pair.conversations;
    l.bytes += pair.bytes;
    l.byLocality[pair.locality] = (l.byLocality[pair.locality] ?? 0) + pair.conversations;
    l.pairs.push({ src: pair.src, dst: pair.dst, conversations: pair.conversations, bytes: pair.bytes });
  }
  return { markers: [...markers.values()], links: [...links.values()], unplaced: [...unplaced] };
}

/** The locality most of a link's conversations have: its colour. */
export function mainLocality(l: Link): Locality {
  let best: Locality = 'external';
  let n = -1;
  for (const [loc, c] of Object.entries(l.byLocality) as [Locality, number][]) {
    if (c > n) {
      best = loc;
      n = c;
    }
  }
  return best;
}
