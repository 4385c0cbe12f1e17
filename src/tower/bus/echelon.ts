/**
 * A division over its brigades (docs/bus.md, Echelons): each brigade's server is a leaf node
 * of the division's, with a JetStream domain of its own, so it keeps working cut off; the
 * division's stream sources every brigade's stream through that domain's API, and JetStream
 * resumes each source where it stopped when a cut link returns. A brigade's batches reach
 * the division's writer with their brigade's subjects; their node names are qualified by
 * brigade before they are stored, so the division tells `brigade1/alpha` from
 * `brigade2/alpha`, and a brigade's own nodes (whose names hold no `/`) from both.
 */
import type { StreamSource } from 'nats';
import type { IngestBatch } from '../model.js';
import { streamName } from './codec.js';

/** The stream sources of a division with these brigades. */
export function brigadeSources(brigades: readonly string[]): StreamSource[] {
  return brigades.map((b) => ({ name: streamName(b), external: { api: `$JS.${b}.API`, deliver: '' } }));
}

export function qualifiedNode(brigade: string, node: string): string {
  return `${brigade}/${node}`;
}

/** The batch with every node name in it (its node's, and the ends the brigade placed) qualified. */
export function qualifyBatch(brigade: string, b: IngestBatch): IngestBatch {
  const q = (node: string) => qualifiedNode(brigade, node);
  const qn = (node: string | null) => (node === null ? null : q(node));
  return {
    ...b,
    node: q(b.node),
    flows: b.flows.map((r) => ({ ...r, node: q(r.node), srcNode: qn(r.srcNode), dstNode: qn(r.dstNode) })),
    http: b.http.map((r) => ({ ...r, node: q(r.node) })),
    stats: b.stats.map((r) => ({ ...r, node: q(r.node) })),
    links: b.links.map((r) => ({ ...r, node: q(r.node) })),
    routes: b.routes.map((r) => ({ ...r, node: q(r.node) })),
  };
}
