/**
 * The node's routes for the tower: from babeld's local socket while it answers, from the
 * kernel's table otherwise (before babeld starts, after it stops, or with no babeld at all).
 * A report goes out when a destination's next hop changes or a destination comes or goes,
 * and every refresh interval in any case; each route says since when it has its next hop.
 */
import { nodeLog as log } from '../../../shared/log.js';
import { BabelMonitor, type BabelTable, type BabelTarget } from './babel.js';
import { kernelRoutes } from './kernel.js';

export interface RouteEntry {
  prefix: string;
  /** The next hop's address (the neighbour's on a radio link); empty for the node's own prefixes. */
  via: string;
  iface: string;
  metric: number;
  /** When this destination took this next hop (ms). */
  sinceMs: number;
}

export interface RouteReport {
  source: 'babel' | 'kernel';
  routes: RouteEntry[];
}

type Route = Omit<RouteEntry, 'sinceMs'>;

/** The routes now and since when each has its next hop (pure: tested without a daemon). */
export class RouteBook {
  private current = new Map<string, RouteEntry>();

  /** Takes the routes now; true when a next hop changed or a destination came or went. */
  update(routes: Route[], nowMs = Date.now()): boolean {
    const best = new Map<string, Route>();
    for (const r of routes) {
      const had = best.get(r.prefix);
      if (!had || r.metric < had.metric) best.set(r.prefix, r);
    }
    let changed = best.size !== this.current.size;
    const next = new Map<string, RouteEntry>();
    for (const [prefix, r] of best) {
      const was = this.current.get(prefix);
      const same = was && was.via === r.via && was.iface === r.iface;
      if (!same) changed = true;
      next.set(prefix, { ...r, sinceMs: same ? was.sinceMs : nowMs });
    }
    this.current = next;
    return changed;
  }

  entries(): RouteEntry[] {
    return [...this.current.values()].sort((a, b) => a.prefix.localeCompare(b.prefix));
  }
}

/** babeld's installed routes and own prefixes; a next hop named by the neighbour's address on the link. */
export function babelRoutes(table: BabelTable, neighbours: Map<string, string>): Route[] {
  const own = [...table.xroutes.values()].map((x) => ({
    prefix: x.prefix,
    via: '',
    iface: '',
    metric: x.metric,
  }));
  const mine = new Set(own.map((r) => r.prefix));
  const learned = [...table.routes.values()]
    .filter((r) => r.installed && !mine.has(r.prefix))
    .map((r) => ({
      prefix: r.prefix,
      via: neighbours.get(r.iface) ?? r.via,
      iface: r.iface,
      metric: r.metric,
    }));
  return [...own, ...learned];
}

export interface RouteWatcherOptions {
  babel?: BabelTarget;
  /** The neighbour's address on each radio link, by interface: babeld names next hops by link-local address. */
  neighbours: Map<string, string>;
  refreshMs: number;
  /** How often the kernel's table is read while babeld does not answer. */
  pollMs: number;
  onReport: (report: RouteReport) => void;
}

const BABEL_RETRY_MS = 2000;
/** babeld sends a burst of lines per change: one look after the burst. */
const SETTLE_MS = 100;

export class RouteWatcher {
  private readonly book = new RouteBook();
  private babel: BabelMonitor | undefined;
  private source: RouteReport['source'] = 'kernel';
  private readonly timers: NodeJS.Timeout[] = [];
  private retry: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;
  private reading = false;
  private stopped = false;
  private babelWarned = false;

  constructor(private readonly options: RouteWatcherOptions) {}

  async start(): Promise<void> {
    await this.readKernel(true);
    if (this.options.babel) this.openBabel(this.options.babel);
    this.timers.push(
      setInterval(() => this.send(), this.options.refreshMs),
      setInterval(() => void this.readKernel(), this.options.pollMs),
    );
  }

  private openBabel(target: BabelTarget): void {
    if (this.stopped) return;
    const m = new BabelMonitor(target);
    this.babel = m;
    m.on('ready', () => {
      log.info({ target }, 'routes: from babeld');
      this.babelWarned = false;
      this.source = 'babel';
      this.fromBabel(true);
    });
    m.on('change', () => {
      this.settle ??= setTimeout(() => {
        this.settle = undefined;
        this.fromBabel();
      }, SETTLE_MS);
    });
    m.on('down', (why) => {
      const was = this.source;
      this.source = 'kernel';
      if (was === 'babel' || !this.babelWarned)
        log.warn({ target, why }, 'routes: babeld does not answer; reading the kernel table until it does');
      this.babelWarned = true;
      if (was === 'babel') void this.readKernel(true);
      if (!this.stopped) this.retry = setTimeout(() => this.openBabel(target), BABEL_RETRY_MS);
    });
    m.open();
  }

  private fromBabel(force = false): void {
    if (this.source !== 'babel' || !this.babel) return;
    if (this.book.update(babelRoutes(this.babel.table, this.options.neighbours)) || force) this.send();
  }

  private async readKernel(force = false): Promise<void> {
    if (this.source !== 'kernel' || this.reading || this.stopped) return;
    this.reading = true;
    try {
      const routes = await kernelRoutes();
      // babeld may have answered while `ip` ran: its view wins.
      if (this.source === 'kernel' && (this.book.update(routes) || force)) this.send();
    } catch (err) {
      log.warn({ err }, 'routes: cannot read the kernel table');
    } finally {
      this.reading = false;
    }
  }

  private send(): void {
    if (this.stopped) return;
    this.options.onReport({ source: this.source, routes: this.book.entries() });
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.retry);
    clearTimeout(this.settle);
    this.babel?.close();
  }
}
