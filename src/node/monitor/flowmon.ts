/**
 * bpf/flowmon.bpf.c loaded and attached: which interfaces it watches, its run-time
 * configuration (metrics, sampling, per-interface enable) and its kernel counters.
 */
import { type Attachment, attach, BpfObject, ifindexOf, objectPath, type TypedMap } from '../../bpf/index.js';
import {
  FLOWMON_L3,
  FLOWMON_L4,
  FLOWMON_L7,
  type FlowmonClockSample,
  type FlowmonConfig,
  type FlowmonCounters,
  type FlowmonIface,
  flowmonClockSample,
  flowmonConfig,
  flowmonCounters,
  flowmonIface,
  u32Key,
  zeroFlowmonCounters,
} from '../../bpf/types.js';

export interface MetricSwitches {
  l3: boolean;
  l4: boolean;
  l7: boolean;
}

export interface FlowmonSettings extends MetricSwitches {
  /** Emit one HTTP event in N (1 = all). */
  sample: number;
}

export interface FlowmonOptions {
  netns?: string;
  /** Flow table capacity (entries); full is counted, never fatal. */
  maxFlows?: number;
  /** The object file to load (default: the build output); e.g. a copy verified against a signed manifest. */
  objectPath?: string;
}

/** flowmon's global data (.bss: struct flowmon_config), as one typed array entry. */
export function flowmonConfigMap(obj: BpfObject): TypedMap<number, FlowmonConfig> {
  const map = obj.map(obj.mapNames().find((n) => n.endsWith('.bss')) ?? 'flowmon.bss');
  if (map.valueSize !== flowmonConfig.size)
    throw new Error(
      `flowmon .bss is ${map.valueSize} bytes, expected struct flowmon_config (${flowmonConfig.size})`,
    );
  return map.typed(u32Key, flowmonConfig);
}

/** Writes the program's run-time config (read by the programs on every packet). */
export function writeFlowmonConfig(obj: BpfObject, config: Omit<FlowmonConfig, 'ifacesDisabled'>): void {
  flowmonConfigMap(obj).update(0, { ...config, ifacesDisabled: 0 });
}

/** The program's test run takes a frame; it reads none of it. */
const CLOCK_FRAME = Buffer.alloc(14);

/** Runs flowmon_clock_sample and reads what it wrote. */
export function readClockSample(obj: BpfObject): FlowmonClockSample {
  obj.program('flowmon_clock_sample').testRun(CLOCK_FRAME);
  const sample = obj.map('flowmon_clock').typed(u32Key, flowmonClockSample).lookup(0);
  if (!sample) throw new Error('flowmon_clock has no entry');
  return sample;
}

export class Flowmon {
  readonly obj: BpfObject;
  private readonly attachments: Attachment[] = [];
  private readonly config: TypedMap<number, FlowmonConfig>;
  private readonly ifaces: TypedMap<number, FlowmonIface>;
  private readonly counters: TypedMap<number, FlowmonCounters>;
  private readonly names = new Map<number, string>();
  /** The ifindexes flowmon_ifaces holds disabled; their count goes into the config. */
  private readonly disabled = new Set<number>();
  private current: Omit<FlowmonConfig, 'ifacesDisabled'> = { metrics: 0, l7Sample: 1 };

  constructor(
    settings: FlowmonSettings,
    private readonly options: FlowmonOptions = {},
  ) {
    this.obj = BpfObject.load(options.objectPath ?? objectPath('flowmon'), {
      maxEntries: options.maxFlows ? { flowmon_flows: options.maxFlows } : {},
    });
    this.config = flowmonConfigMap(this.obj);
    this.ifaces = this.obj.map('flowmon_ifaces').typed(u32Key, flowmonIface);
    this.counters = this.obj.map('flowmon_counters').typed(u32Key, flowmonCounters);
    this.configure(settings);
  }

  /** Watches both directions of an interface. */
  watch(iface: string): void {
    const ifindex = ifindexOf(iface, this.options.netns);
    const netns = this.options.netns ? { netns: this.options.netns } : {};
    this.ifaces.update(ifindex, { enabled: 1 });
    if (this.disabled.delete(ifindex)) this.writeConfig();
    this.attachments.push(attach(this.obj.program('flowmon_ingress'), iface, 'ingress', netns));
    this.attachments.push(attach(this.obj.program('flowmon_egress'), iface, 'egress', netns));
    this.names.set(ifindex, iface);
  }

  /** Detaches from an interface (also one whose programs someone else already took off). */
  unwatch(iface: string): void {
    for (const a of this.attachments.filter((x) => x.iface === iface)) {
      a.detach();
      this.attachments.splice(this.attachments.indexOf(a), 1);
    }
    for (const [ifindex, name] of this.names) if (name === iface) this.names.delete(ifindex);
  }

  get interfaces(): string[] {
    return [...this.names.values()];
  }

  ifaceName = (ifindex: number): string => this.names.get(ifindex) ?? `if${ifindex}`;

  /** Pauses or resumes one interface without detaching (takes effect on the next packet). */
  setInterfaceEnabled(iface: string, enabled: boolean): void {
    const entry = [...this.names].find(([, name]) => name === iface);
    if (!entry) throw new Error(`interface ${iface} is not watched`);
    this.ifaces.update(entry[0], { enabled: enabled ? 1 : 0 });
    if (enabled) this.disabled.delete(entry[0]);
    else this.disabled.add(entry[0]);
    this.writeConfig();
  }

  private writeConfig(): void {
    this.config.update(0, { ...this.current, ifacesDisabled: this.disabled.size });
  }

  /** Takes effect on the next packet: the programs read the global data every time. */
  configure(settings: FlowmonSettings): void {
    if (!Number.isInteger(settings.sample) || settings.sample < 1) {
      throw new Error(`sampling must be a whole number >= 1 (1 in N), got ${settings.sample}`);
    }
    const metrics =
      (settings.l3 ? FLOWMON_L3 : 0) | (settings.l4 ? FLOWMON_L4 : 0) | (settings.l7 ? FLOWMON_L7 : 0);
    this.current = { metrics, l7Sample: settings.sample };
    this.writeConfig();
  }

  settings(): FlowmonSettings {
    const c = this.config.lookup(0) ?? this.current;
    return {
      l3: (c.metrics & FLOWMON_L3) !== 0,
      l4: (c.metrics & FLOWMON_L4) !== 0,
      l7: (c.metrics & FLOWMON_L7) !== 0,
      sample: Math.max(1, c.l7Sample),
    };
  }

  /** The kernel counters, summed over CPUs. */
  counts(): FlowmonCounters {
    const total = zeroFlowmonCounters();
    for (const perCpu of this.counters.lookupAll(0) ?? []) {
      for (const k of Object.keys(total) as (keyof FlowmonCounters)[]) total[k] += perCpu[k];
    }
    return total;
  }

  /** Both kernel tick clocks at one instant (runs flowmon_clock_sample once). */
  clockSample(): FlowmonClockSample {
    return readClockSample(this.obj);
  }

  close(): void {
    for (const a of this.attachments.splice(0)) a.detach();
    this.obj.close();
  }
}
