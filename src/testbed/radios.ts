/**
 * The testbed's radios: at every node a DLEP modem per radio link end (radio/radio.ts), on
 * the node's loopback, telling the node's router the rate the testbed emulates on the link
 * and whether the neighbour is in range. The radio files are rewritten when a link is cut,
 * restored or set; each node's radio process follows its file.
 */
import { join } from 'node:path';
import { scriptPath } from '../netlab/tools/index.js';
import { writeFileAtomic } from '../shared/atomic-file.js';
import type { LinkPlan, TestbedPlan } from './plan.js';
import type { RadioFile } from './radio/radio.js';

const FIRST_PORT = 8540;

/** What `link set` made of a link, over the configured rate and loss. */
export interface LinkSetting {
  rateMbit: number;
  lossPct: number;
  cut: boolean;
}

export const linkKey = (l: Pick<LinkPlan, 'a' | 'b'>) => `${l.a}-${l.b}`;

/** The node's radio links, in a fixed order: the DLEP port of each is FIRST_PORT + its index. */
function linksOf(plan: TestbedPlan, node: string): LinkPlan[] {
  return plan.links.filter((l) => l.a === node || l.b === node);
}

const end = (l: LinkPlan, node: string) =>
  l.a === node
    ? { iface: l.ifA, addr: l.addrA, peer: l.b, peerIface: l.ifB, peerAddr: l.addrB }
    : { iface: l.ifB, addr: l.addrB, peer: l.a, peerIface: l.ifA, peerAddr: l.addrA };

const host = (cidr: string) => cidr.split('/')[0] ?? cidr;

/** The uplink's `mesh` section in the node's config: its neighbour and its radio. */
export function uplinkMesh(plan: TestbedPlan, node: string, link: LinkPlan) {
  const i = linksOf(plan, node).indexOf(link);
  return { neighbour: host(end(link, node).peerAddr), dlep: { address: '127.0.0.1', port: FIRST_PORT + i } };
}

/** The radio process's script: `node <RADIO_TOOL> <radio file>` in the node's namespace. */
export const RADIO_TOOL = scriptPath(import.meta.url, './radio/radio');

export const radioFile = (dir: string, node: string) => join(dir, `radio-${node}.json`);

/** Writes every node's radio file from the links' settings; `macs` by "node/iface". */
export function writeRadios(
  dir: string,
  plan: TestbedPlan,
  settings: (l: LinkPlan) => LinkSetting,
  maxRateMbit: number,
  macs: Record<string, string>,
  /** The delay the link's air adds each way (DLEP's Latency is one-way). */
  latencyUs: number,
): void {
  for (const n of plan.nodes) {
    const file: RadioFile = {
      links: linksOf(plan, n.name).map((l, i) => {
        const e = end(l, n.name);
        const s = settings(l);
        return {
          address: '127.0.0.1',
          port: FIRST_PORT + i,
          neighbour: { mac: macs[`${e.peer}/${e.peerIface}`] ?? '', addresses: [host(e.peerAddr)] },
          rateMbit: s.rateMbit,
          maxRateMbit,
          latencyUs,
          up: !s.cut,
        };
      }),
    };
    // Renamed into place: the radio never reads a half-written file.
    writeFileAtomic(radioFile(dir, n.name), JSON.stringify(file, null, 2), 0o644);
  }
}
