/**
 * What a node may register in its hello: a bounded number of well-formed subnets, inside
 * the ones tower.yaml gives it (if it gives it any), and none overlapping another node's —
 * so no node can have another's traffic stored under its name, nor make the tower index
 * an unbounded number of prefixes.
 */
import { isIP } from 'node:net';
import type { Hello__Output } from '../../proto/index.js';
import type { Prefix } from '../ingest/locality.js';
import { type Cidr, contains, firstOverlap, parseCidr } from '../ingest/prefix.js';
import type { Position } from '../model.js';

const MAX_NAME = 64;
const MAX_SOFTWARE = 200;

export interface HelloRules {
  /** limits.subnetsPerNode */
  maxSubnets: number;
  /** The subnets tower.yaml gives this node; undefined: any not another node's. */
  allowed: Cidr[] | undefined;
  /** Every prefix that places addresses on another node (their hellos, the site file, tower.yaml). */
  others: Prefix[];
}

export interface CheckedHello {
  subnets: string[];
  slices: { name: string; subnets: string[]; bridge: string }[];
  position: Position | null;
  software: string;
  /** The neighbour's address the node comes through over the mesh; null when direct. */
  via: string | null;
}

/** The hello as the registry takes it, or the reason it is refused. */
export function checkHello(h: Hello__Output, rules: HelloRules): CheckedHello | { refused: string } {
  const count = h.subnets.length + h.slices.reduce((n, s) => n + s.subnets.length, 0);
  if (count > rules.maxSubnets || h.slices.length > rules.maxSubnets)
    return {
      refused: `the hello lists ${count} subnets in ${h.slices.length} slices, more than the ${rules.maxSubnets} a node may register (limits.subnetsPerNode)`,
    };
  if (h.software.length > MAX_SOFTWARE)
    return { refused: `software is longer than ${MAX_SOFTWARE} characters` };
  if (h.via && !isIP(h.via))
    return { refused: `via "${h.via.slice(0, 60)}" is not the address of a neighbour` };
  for (const s of h.slices)
    if (s.name.length > MAX_NAME || s.bridge.length > MAX_NAME)
      return { refused: `a slice name or bridge is longer than ${MAX_NAME} characters` };
  const mine: Cidr[] = [];
  try {
    for (const s of h.subnets) mine.push(parseCidr(s));
    for (const s of h.slices) for (const c of s.subnets) parseCidr(c);
  } catch (err) {
    return { refused: `the hello's ${(err as Error).message}` };
  }
  if (rules.allowed) {
    const allowed = rules.allowed;
    const outside = mine.find((c) => !allowed.some((a) => contains(a, c)));
    if (outside)
      return { refused: `subnet ${outside.text} is not among the subnets tower.yaml gives node "${h.node}"` };
  }
  const clash = firstOverlap(mine, rules.others);
  if (clash) {
    const [own, theirs] = clash;
    return { refused: `subnet ${own.text} overlaps ${theirs.cidr.text}, which is node "${theirs.node}"'s` };
  }
  const p = h.position;
  const position =
    p &&
    Number.isFinite(p.lat) &&
    Number.isFinite(p.lon) &&
    Math.abs(p.lat) <= 90 &&
    Math.abs(p.lon) <= 180 &&
    (p.lat !== 0 || p.lon !== 0)
      ? { lat: p.lat, lon: p.lon }
      : null;
  return {
    subnets: h.subnets,
    slices: h.slices.map((s) => ({ name: s.name, subnets: s.subnets, bridge: s.bridge })),
    position,
    software: h.software,
    via: h.via || null,
  };
}
