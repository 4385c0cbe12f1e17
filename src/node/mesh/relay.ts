/**
 * The relay a node offers its neighbours for their control plane when their management
 * path is gone (node.yaml mesh.relay; docs/mesh.md): on each radio link, a listener on this
 * node's address there that takes connections only from the neighbour at the link's other
 * end, and joins each to a new connection to the tower this node's own link talks to (with
 * a standby tower, the leader as far as it knows), opened from its management address. Bytes only: the neighbour's TLS session runs end to end with the
 * tower. Never an open relay: the far end is fixed, the near end is one neighbour, and it
 * has a few connections at most.
 */
import { connect } from 'node:net';
import { nodeLog as log } from '../../shared/log.js';
import { type Relay, splitHostPort, startRelay } from '../../shared/relay.js';
import type { MeshLink } from './stage.js';

/** A neighbour needs one connection; a few allow a reconnect while an old one lingers. */
const CLIENTS_PER_NEIGHBOUR = 4;
const LISTEN_RETRY_MS = 2000;

export class NeighbourRelay {
  private readonly relays: Relay[] = [];
  private readonly retries = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly links: MeshLink[],
    private readonly options: { port: number; tower: () => string; localAddress?: string },
  ) {}

  /** Resolves once every link listens, or is retried (its address not there yet). */
  async start(): Promise<void> {
    await Promise.all(this.links.map((link) => this.listen(link)));
  }

  /** Listens on the link's address; until the address is there (an agent still making it), retries. */
  private async listen(link: MeshLink): Promise<void> {
    if (this.stopped) return;
    const neighbour = link.mesh.neighbour;
    try {
      const { tower, localAddress } = this.options;
      const relay = await startRelay(tower(), {
        listen: `${link.address}:${this.options.port}`,
        upstream: () => connect({ ...splitHostPort(tower()), ...(localAddress ? { localAddress } : {}) }),
        allow: (from) => from === neighbour || from === `::ffff:${neighbour}`,
        maxClients: CLIENTS_PER_NEIGHBOUR,
      });
      if (this.stopped) return void (await relay.close());
      this.relays.push(relay);
      log.info(
        { iface: link.iface, listen: relay.address, neighbour },
        'relay to the tower offered to a neighbour',
      );
    } catch (err) {
      log.warn({ iface: link.iface, err }, 'relay for a neighbour not listening yet; retrying');
      const t = setTimeout(() => {
        this.retries.delete(t);
        void this.listen(link);
      }, LISTEN_RETRY_MS);
      this.retries.add(t);
    }
  }

  get counters(): { joined: number; refused: number } {
    return this.relays.reduce(
      (sum, r) => ({ joined: sum.joined + r.counters.joined, refused: sum.refused + r.counters.refused }),
      { joined: 0, refused: 0 },
    );
  }

  async close(): Promise<void> {
    this.stopped = true;
    for (const t of this.retries) clearTimeout(t);
    await Promise.all(this.relays.map((r) => r.close()));
  }
}
