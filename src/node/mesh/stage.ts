/**
 * The node's mesh stage, its part of the tactical service mesh: a STAMP reflector for its
 * neighbours, and for each radio link a STAMP session-sender, the radio's DLEP session when
 * it has one, and the interface's load. Every interval it reports each link — its state,
 * round-trip time, jitter, loss each way, capacity, load and utilization — and when a radio
 * says a neighbour is gone, at once (`now`), not at the next interval; and it reports the
 * node's routes when a next hop changes (routes/).
 */
import { nodeLog as log } from '../../shared/log.js';
import { setDscp } from '../../shared/socket-options.js';
import type { MeshConfig, UplinkMesh } from './config.js';
import { RateMeter } from './counters.js';
import { type Destination, DlepRouter } from './dlep/router.js';
import { type LinkState, linkState } from './link-state.js';
import { type RouteReport, RouteWatcher } from './routes/watcher.js';
import { StampReflector } from './stamp/reflector.js';
import { type ProbeStats, StampSender } from './stamp/sender.js';

/** One radio link of the node. */
export interface MeshLink {
  iface: string;
  /** This node's address on the link (no prefix length). */
  address: string;
  /** The uplink's configured rate: capacity where no radio says otherwise. */
  rateMbit: number;
  mesh: UplinkMesh;
}

/** Rates are in bits per second. */
export interface LinkReport {
  iface: string;
  address: string;
  neighbour: string;
  state: LinkState;
  /** Why the link is degraded or down (empty when up). */
  why: string[];
  /** When it last changed state (ms). */
  sinceMs: number;
  probe: ProbeStats;
  capacityBps: number;
  maxCapacityBps: number;
  capacityFrom: 'dlep' | 'config';
  /** DLEP's latency for the neighbour (µs), when the radio says. */
  radioLatencyUs: number | null;
  loadBps: { tx: number; rx: number };
  /** The busier direction's load over capacity. */
  utilization: number;
}

const DLEP_RETRY_MS = 2000;

class RadioLink {
  readonly sender: StampSender;
  private router: DlepRouter | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  state: LinkState = 'up';
  sinceMs = Date.now();

  constructor(
    readonly link: MeshLink,
    sender: StampSender,
    /** The radio reported a change that cannot wait for the next interval. */
    private readonly onUrgent: () => void,
  ) {
    this.sender = sender;
  }

  /** Keeps a DLEP session with the link's radio, reconnecting when it ends. */
  connectRadio(): void {
    const dlep = this.link.mesh.dlep;
    if (!dlep || this.stopped) return;
    const router = new DlepRouter({ address: dlep.address, port: dlep.port });
    this.router = router;
    router.on('destination-down', () => this.onUrgent());
    router.on('session-down', (why) => {
      log.warn({ iface: this.link.iface, why }, 'DLEP session down');
      this.scheduleRetry();
    });
    router.open().catch((err: Error) => {
      log.debug({ iface: this.link.iface, err }, 'DLEP session not opened');
      this.scheduleRetry();
    });
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retry) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.connectRadio();
    }, DLEP_RETRY_MS);
  }

  /** The radio's destination for our neighbour: the one whose addresses include it, or the only one. */
  private destination(): Destination | undefined {
    const all = [...(this.router?.destinations.values() ?? [])];
    return (
      all.find((d) => d.addresses.includes(this.link.mesh.neighbour)) ??
      (all.length === 1 ? all[0] : undefined)
    );
  }

  report(marks: MeshConfig['degraded'], load: { rxBps: number; txBps: number } | undefined): LinkReport {
    const probe = this.sender.stats();
    const configured = this.link.rateMbit * 1e6;
    const d = this.link.mesh.dlep ? this.destination() : undefined;
    const metrics = d ? { ...this.router?.sessionMetrics, ...d.metrics } : undefined;
    const capacityBps = metrics?.currentTxBps !== undefined ? Number(metrics.currentTxBps) : configured;
    const maxCapacityBps = metrics?.maxTxBps !== undefined ? Number(metrics.maxTxBps) : configured;
    const { state, why } = linkState(
      {
        probe,
        ...(this.link.mesh.dlep ? { radioReportsNeighbour: d !== undefined } : {}),
        capacityBps,
        maxCapacityBps,
      },
      marks,
    );
    if (state !== this.state) {
      log.info({ iface: this.link.iface, from: this.state, to: state, why }, 'radio link state');
      this.state = state;
      this.sinceMs = Date.now();
    }
    const loadBps = { tx: load?.txBps ?? 0, rx: load?.rxBps ?? 0 };
    return {
      iface: this.link.iface,
      address: this.link.address,
      neighbour: this.link.mesh.neighbour,
      state,
      why,
      sinceMs: this.sinceMs,
      probe,
      capacityBps,
      maxCapacityBps,
      capacityFrom: metrics?.currentTxBps !== undefined ? 'dlep' : 'config',
      radioLatencyUs: metrics?.latencyUs !== undefined ? Number(metrics.latencyUs) : null,
      loadBps,
      utilization: capacityBps > 0 ? Math.max(loadBps.tx, loadBps.rx) / capacityBps : 0,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    this.router?.close();
    await this.sender.close();
  }
}

/** Where the stage's reports go (the tower link). */
export interface MeshSink {
  /** `now`: out of turn, a radio said a neighbour is gone. */
  links(reports: LinkReport[], now: boolean): void;
  routes(report: RouteReport): void;
}

export class MeshStage {
  private reflector: StampReflector | undefined;
  private readonly links: RadioLink[] = [];
  private readonly meter = new RateMeter();
  private timer: NodeJS.Timeout | undefined;
  private urgent: NodeJS.Immediate | undefined;
  private stopped = false;
  private routes: RouteWatcher | undefined;
  private latest: LinkReport[] = [];

  constructor(
    private readonly config: MeshConfig,
    private readonly radioLinks: MeshLink[],
    private readonly sink: MeshSink,
  ) {}

  /** A report of every link out of turn (several radio events at once make one). */
  private reportNow(): void {
    if (this.stopped) return;
    this.urgent ??= setImmediate(() => {
      this.urgent = undefined;
      this.sink.links(this.reports(), true);
    });
  }

  async start(): Promise<void> {
    this.reflector = await StampReflector.listen(this.config.probe.port);
    for (const link of this.radioLinks) {
      const sender = await StampSender.open({
        peer: link.mesh.neighbour,
        port: this.config.probe.port,
        ratePps: this.config.probe.ratePps,
        timeoutMs: this.config.probe.timeoutMs,
        windowMs: this.config.probe.windowMs,
      });
      // CS6 by default: network control, which QoS can keep from being squeezed out.
      if (!setDscp(sender.udp, this.config.probe.dscp))
        log.warn({ iface: link.iface }, 'mesh: cannot set the DSCP of the probes');
      const radio = new RadioLink(link, sender, () => this.reportNow());
      this.links.push(radio);
      sender.start();
      radio.connectRadio();
    }
    this.meter.sample();
    this.timer = setInterval(() => this.sink.links(this.reports(), false), this.config.intervalMs);
    const { babel, refreshMs } = this.config.routes;
    this.routes = new RouteWatcher({
      ...(babel ? { babel } : {}),
      neighbours: new Map(this.radioLinks.map((l) => [l.iface, l.mesh.neighbour])),
      refreshMs,
      pollMs: this.config.intervalMs,
      onReport: (r) => this.sink.routes(r),
    });
    await this.routes.start();
  }

  /**
   * Every radio link's report now: the timer's, and one out of turn when a radio says a
   * neighbour is gone (each call restarts the load meter's interval).
   */
  private reports(): LinkReport[] {
    const load = this.meter.sample();
    this.latest = this.links.map((l) => l.report(this.config.degraded, load.get(l.link.iface)));
    return this.latest;
  }

  /** The reports of the last interval (what the node's metrics show). */
  get last(): LinkReport[] {
    return this.latest;
  }

  /** The neighbours' addresses, those whose link is up first, then degraded, then down. */
  neighbours(): string[] {
    const rank = { up: 0, degraded: 1, down: 2 } as const;
    return [...this.links].sort((a, b) => rank[a.state] - rank[b.state]).map((l) => l.link.mesh.neighbour);
  }

  get reflectorCounters() {
    return this.reflector?.counters;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.urgent) clearImmediate(this.urgent);
    this.routes?.stop();
    await Promise.all(this.links.map((l) => l.stop()));
    await this.reflector?.close();
  }
}
