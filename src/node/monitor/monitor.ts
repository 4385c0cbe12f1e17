/**
 * The monitor stage: flowmon in the kernel → flow deltas and HTTP events as typed records.
 * Every export interval it reads the flow table (batch lookup), drains the HTTP ring
 * buffer, and hands FlowRecords, HttpEvents and MonitorStats to its sink.
 */
import { hostname } from 'node:os';
import { RingBufferReader } from '../../bpf/ringbuf.js';
import { run } from '../../shared/exec.js';
import { MonotonicClock, TickClock } from './clock.js';
import { FlowKeyCache } from './flow-key.js';
import { FlowTable } from './flow-table.js';
import { Flowmon, type FlowmonSettings } from './flowmon.js';
import { decodeHttpEvent } from './http-event.js';
import type { FlowRecord, HttpEvent, IfaceKind, MonitorStats } from './records.js';

export interface MonitorSink {
  flows(records: FlowRecord[]): void;
  http(event: HttpEvent): void;
  stats(stats: MonitorStats): void;
}

export interface MonitorOptions {
  /** Interface names or glob patterns (`veth*`), in the namespace the monitor runs in. */
  interfaces: string[];
  node?: string;
  netns?: string;
  intervalMs?: number;
  idleTimeoutMs?: number;
  maxFlows?: number;
  settings?: Partial<FlowmonSettings>;
  /** The flowmon object file to load (default: the build output). */
  objectPath?: string;
}

/** 8 MiB of ring holds ~14k events: drained every 10 ms it absorbs over 1 M events/s. */
const HTTP_DRAIN_MS = 10;

export const DEFAULT_SETTINGS: FlowmonSettings = { l3: true, l4: true, l7: true, sample: 1 };

/** Expands names and glob patterns against the interfaces that exist. */
export async function resolveInterfaces(patterns: string[], netns?: string): Promise<string[]> {
  const { stdout } = await run('ip', [...(netns ? ['-n', netns] : []), '-j', 'link', 'show']);
  const existing = (JSON.parse(stdout) as { ifname: string }[]).map((l) => l.ifname);
  const chosen = new Set<string>();
  for (const pattern of patterns) {
    const re = new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    );
    const hits = existing.filter((name) => re.test(name));
    if (hits.length === 0) {
      throw new Error(
        `no interface matches ${pattern}${netns ? ` in ${netns}` : ''} (have: ${existing.join(', ')})`,
      );
    }
    for (const h of hits) chosen.add(h);
  }
  return [...chosen];
}

export class Monitor {
  readonly flowmon: Flowmon;
  private readonly table: FlowTable;
  private readonly ticks: TickClock;
  private readonly ring: RingBufferReader;
  private readonly clock = new MonotonicClock();
  private readonly node: string;
  private timer: NodeJS.Timeout | undefined;
  private interval: number;
  private httpTimer: NodeJS.Timeout | undefined;
  private readMs = 0;
  private keys: FlowKeyCache | undefined;
  /** Interfaces added as a container's or VM's port; any other is 'host'. */
  private readonly kinds = new Map<string, IfaceKind>();

  private constructor(
    private readonly sink: MonitorSink,
    options: MonitorOptions,
    interfaces: string[],
  ) {
    this.node = options.node ?? hostname();
    this.interval = options.intervalMs ?? 1000;
    this.flowmon = new Flowmon(
      { ...DEFAULT_SETTINGS, ...options.settings },
      {
        ...(options.netns ? { netns: options.netns } : {}),
        ...(options.maxFlows ? { maxFlows: options.maxFlows } : {}),
        ...(options.objectPath ? { objectPath: options.objectPath } : {}),
      },
    );
    try {
      for (const iface of interfaces) this.flowmon.watch(iface);
      this.ticks = new TickClock(() => this.flowmon.clockSample());
      this.ticks.calibrate();
      this.table = new FlowTable(this.flowmon.obj.map('flowmon_flows'), this.clock, this.ticks, {
        node: this.node,
        idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
        ifaceName: this.flowmon.ifaceName,
      });
      this.ring = new RingBufferReader(this.flowmon.obj.map('flowmon_events'));
    } catch (err) {
      this.flowmon.close();
      throw err;
    }
  }

  static async start(sink: MonitorSink, options: MonitorOptions): Promise<Monitor> {
    const interfaces = await resolveInterfaces(options.interfaces, options.netns);
    const monitor = new Monitor(sink, options, interfaces);
    monitor.timer = setInterval(() => monitor.tick(), monitor.interval);
    monitor.httpTimer = setInterval(() => monitor.drainHttp(), HTTP_DRAIN_MS);
    return monitor;
  }

  /** HTTP events are drained more often than flows are read, so the ring never fills. */
  private drainHttp(): number {
    this.keys ??= new FlowKeyCache(this.flowmon.ifaceName);
    const keys = this.keys;
    return this.ring.drain((data, at) => {
      const event = decodeHttpEvent(data, at, this.node, this.clock, this.flowmon.ifaceName, keys);
      if (event) {
        event.ifaceKind = this.kinds.get(event.iface) ?? 'host';
        this.sink.http(event);
      }
    });
  }

  /** One export interval: HTTP events first (they happened before the flow totals read next). */
  tick(): void {
    this.drainHttp();
    const started = performance.now();
    const records = this.table.read();
    this.readMs = performance.now() - started;
    for (const r of records) r.ifaceKind = this.kinds.get(r.iface) ?? 'host';
    if (records.length) this.sink.flows(records);
    this.sink.stats(this.stats());
  }

  stats(): MonitorStats {
    const c = this.flowmon.counts();
    return {
      node: this.node,
      time: Date.now(),
      interfaces: this.flowmon.interfaces,
      activeFlows: this.table.size,
      flowsExpired: this.table.expired,
      packetsSeen: Number(c.packetsSeen),
      bytesSeen: Number(c.bytesSeen),
      flowMapFull: Number(c.flowMapFull),
      httpEvents: Number(c.httpEvents),
      eventsDropped: Number(c.eventsDropped),
      l7SampledOut: Number(c.l7SampledOut),
      malformed: Number(c.malformed),
      nonIp: Number(c.nonIp),
      readMs: Math.round(this.readMs * 100) / 100,
    };
  }

  /** Starts watching one more interface while running; its records carry `kind`. */
  addInterface(iface: string, kind: IfaceKind = 'host'): void {
    this.flowmon.watch(iface);
    this.kinds.set(iface, kind);
  }

  /** Stops watching an interface; its flows already counted are still reported. */
  removeInterface(iface: string): void {
    this.flowmon.unwatch(iface);
  }

  configure(settings: Partial<FlowmonSettings>): FlowmonSettings {
    const next = { ...this.flowmon.settings(), ...settings };
    this.flowmon.configure(next);
    return next;
  }

  get intervalMs(): number {
    return this.interval;
  }

  /** A new export interval, from the next tick on. */
  setInterval(ms: number): void {
    if (!Number.isInteger(ms) || ms < 100) throw new Error(`export interval must be >= 100 ms, got ${ms}`);
    if (ms === this.interval || !this.timer) return;
    this.interval = ms;
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), ms);
  }

  /** Reads what is left, then detaches. */
  stop(): void {
    clearInterval(this.timer);
    clearInterval(this.httpTimer);
    this.timer = undefined;
    this.tick();
    this.ring.close();
    this.flowmon.close();
  }
}
