/**
 * Link emulation on one direction of a link: random loss by bpf/linkem.bpf.c (this kernel
 * has no netem), independent or in bursts, counted in the kernel. Also the strictly
 * one-way link: loss = 100 %.
 */
import {
  type AttachMode,
  type Attachment,
  attach,
  BpfObject,
  objectPath,
  type TypedMap,
} from '../bpf/index.js';
import {
  type LinkemConfig,
  type LinkemCounters,
  linkemConfig,
  linkemCounters,
  u32Key,
} from '../bpf/types.js';

export const PPM = 1_000_000;

export interface LinkemOptions {
  netns?: string;
  /** Ingress or egress of the interface; egress drops what leaves through it. */
  direction?: 'ingress' | 'egress';
  /** Fraction lost, 0..1. */
  loss: number;
  /** Packets lost in a row per loss burst (default 1: independent loss). */
  burst?: number;
  /** 'tc' keeps the filter after this process exits (a long-lived testbed); default tcx. */
  mode?: AttachMode;
}

export class LinkEmulator {
  private readonly config: TypedMap<number, LinkemConfig>;
  private readonly counters: TypedMap<number, LinkemCounters>;

  private attachment: Attachment | undefined;

  private constructor(private readonly obj: BpfObject) {
    this.config = obj.map('linkem_config').typed(u32Key, linkemConfig);
    this.counters = obj.map('linkem_counters').typed(u32Key, linkemCounters);
  }

  static attach(iface: string, options: LinkemOptions): LinkEmulator {
    const obj = BpfObject.load(objectPath('linkem'));
    try {
      const emulator = new LinkEmulator(obj);
      // Configured before it is attached, so not one packet passes under the wrong loss.
      emulator.setLoss(options.loss, options.burst);
      emulator.attachment = attach(obj.program('linkem'), iface, options.direction ?? 'egress', {
        ...(options.netns ? { netns: options.netns } : {}),
        ...(options.mode ? { mode: options.mode } : {}),
      });
      return emulator;
    } catch (err) {
      obj.close();
      throw err;
    }
  }

  /**
   * Takes effect on the next packet: the program reads the map each time. With `burst` b
   * above 1, losses come b in a row, and a burst starts outside one with the chance q that
   * makes the mean loss `loss`: loss = q·b / (1 + q·(b − 1)), so q = loss / (b − loss·(b − 1)).
   */
  setLoss(loss: number, burst = 1): void {
    if (!(loss >= 0 && loss <= 1)) throw new Error(`loss must be between 0 and 1, got ${loss}`);
    if (!(Number.isInteger(burst) && burst >= 1 && burst <= 10_000))
      throw new Error(`burst must be a whole number of packets from 1 to 10000, got ${burst}`);
    const start = loss >= 1 ? 1 : loss / (burst - loss * (burst - 1));
    this.config.update(0, { lossPpm: Math.round(start * PPM), burst });
  }

  /** Sums the per-CPU counters. */
  counts(): LinkemCounters {
    const total = { passedPackets: 0n, passedBytes: 0n, droppedPackets: 0n, droppedBytes: 0n, bursts: 0n };
    for (const c of this.counters.lookupAll(0) ?? []) {
      total.passedPackets += c.passedPackets;
      total.passedBytes += c.passedBytes;
      total.droppedPackets += c.droppedPackets;
      total.droppedBytes += c.droppedBytes;
      total.bursts += c.bursts;
    }
    return total;
  }

  /**
   * Lets go of the program but leaves it attached (mode 'tc' only): the filter keeps the
   * link's loss after this process exits, as a long-lived testbed needs.
   */
  release(): void {
    if (this.attachment?.mode !== 'tc') throw new Error('only a tc-mode emulator outlives its process');
    this.obj.close();
  }

  close(): void {
    this.attachment?.detach();
    this.obj.close();
  }
}
