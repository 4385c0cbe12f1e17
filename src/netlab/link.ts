/**
 * Emulated links between namespaces: a rate limit by TBF (no netem on these kernels),
 * random loss by the linkem program, and the strictly one-way link a data diode needs
 * (the diode's tests and benchmark, `tacmesh diode demo`, the testbed's link to HQ).
 */
import type { AttachMode } from '../bpf/index.js';
import type { Lab } from './lab.js';
import { LinkEmulator } from './linkem.js';

/** Limits what leaves `iface` to `rateMbit` with a token bucket filter. */
export async function limitRate(lab: Lab, netns: string, iface: string, rateMbit: number): Promise<void> {
  // A burst of ~2 ms at line rate (at least 32 KiB) keeps TCP smooth without letting it exceed the rate.
  const burst = Math.max(32 * 1024, Math.round((rateMbit * 1e6) / 8 / 500));
  await lab.tc(
    netns,
    'qdisc',
    'replace',
    'dev',
    iface,
    'root',
    'tbf',
    'rate',
    `${rateMbit}mbit`,
    'burst',
    `${burst}`,
    'latency',
    '100ms',
  );
}

export interface OneWayLinkOptions {
  /** Addresses (with prefix length) on the sending and receiving ends, in 10.77.0.0/16. */
  fromAddr: string;
  toAddr: string;
  rateMbit?: number;
  /** Random loss on the forward direction, 0..1. */
  loss?: number;
  /** Forward losses come this many in a row (default 1: independent). */
  burst?: number;
  /**
   * 'tc': both programs stay attached after this process exits (until the namespace goes),
   * for a link that outlives its maker; default tcx, gone with this process.
   */
  mode?: AttachMode;
}

export interface OneWayLink {
  fromIface: string;
  toIface: string;
  /** Drops everything the receiving side sends back: the link carries nothing backwards. */
  backward: LinkEmulator;
  /** Loss applied as packets arrive at the receiver. */
  forward: LinkEmulator;
  close(): void;
}

/**
 * A veth from `from` to `to` over which nothing can travel back: every packet leaving the
 * receiving end is dropped by linkem at 100 % loss. No ARP can be answered, so both ends get
 * static neighbour entries. The emulators are tcx links held by this process.
 */
export async function oneWayLink(
  lab: Lab,
  from: string,
  to: string,
  options: OneWayLinkOptions,
): Promise<OneWayLink> {
  const veth = await lab.veth({ netns: from, addr: options.fromAddr }, { netns: to, addr: options.toAddr });
  const ip = (cidr: string) => cidr.split('/')[0] ?? cidr;
  await lab.staticNeighbours(
    { netns: from, iface: veth.a, ip: ip(options.fromAddr) },
    { netns: to, iface: veth.b, ip: ip(options.toAddr) },
  );
  if (options.rateMbit) await limitRate(lab, from, veth.a, options.rateMbit);
  const mode = options.mode ? { mode: options.mode } : {};
  const backward = LinkEmulator.attach(veth.b, { netns: to, direction: 'egress', loss: 1, ...mode });
  let forward: LinkEmulator;
  try {
    forward = LinkEmulator.attach(veth.b, {
      netns: to,
      direction: 'ingress',
      loss: options.loss ?? 0,
      ...(options.burst ? { burst: options.burst } : {}),
      ...mode,
    });
  } catch (err) {
    backward.close();
    throw err;
  }
  return {
    fromIface: veth.a,
    toIface: veth.b,
    backward,
    forward,
    close() {
      forward.close();
      backward.close();
    },
  };
}
