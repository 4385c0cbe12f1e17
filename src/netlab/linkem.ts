/**
 * Link emulation on one direction of a link: random loss by bpf/linkem.bpf.c (this kernel
 * has no netem), counted in the kernel. Also the strictly one-way link: loss = 100 %.
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
      emulator.setLoss(options.loss);
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

  /** Takes effect on the next packet: the program reads the map each time. */
  setLoss(loss: number): void {
    if (!(loss >= 0 && loss <= 1)) throw new Error(`loss must be between 0 and 1, got ${loss}`);
    this.config.update(0, { lossPpm: Math.round(loss * PPM) });
  }

  /** Sums the per-CPU counters. */
  counts(): LinkemCounters {
    const total = { passedPackets: 0n, passedBytes: 0n, droppedPackets: 0n, droppedBytes: 0n };
    for (const c of this.counters.lookupAll(0) ?? []) {
      total.passedPackets += c.passedPackets;
      total.passedBytes += c.passedBytes;
      total.droppedPackets += c.droppedPackets;
      total.droppedBytes += c.droppedBytes;
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
