/**
 * babeld's local control protocol, read-only (babeld(8), "Local configuration interface"):
 * after its banner ("BABEL 1.0" … "ok"), `monitor` dumps every interface, neighbour, xroute
 * and route as "add …" lines, answers "ok", then streams "add", "change" and "flush" lines
 * as they change. The node keeps the routes babeld installed and the prefixes it announces
 * itself (xroutes).
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';

/** Where babeld listens: `local-path` (a unix socket) or `local-port` (TCP on ::1). */
export type BabelTarget = { path: string } | { port: number };

export interface BabelLine {
  kind: 'add' | 'change' | 'flush';
  /** interface, neighbour, xroute, route */
  type: string;
  id: string;
  fields: Record<string, string>;
}

export interface BabelRoute {
  prefix: string;
  installed: boolean;
  metric: number;
  /** The neighbour's (link-local) address. */
  via: string;
  iface: string;
}

export interface BabelXroute {
  prefix: string;
  metric: number;
}

const KINDS = new Set(['add', 'change', 'flush']);
/** No line of babeld's is near this long; a peer that sends one is not babeld. */
const MAX_LINE = 4096;
/** Routes and xroutes kept at most: a babeld gone mad cannot grow the node's memory. */
const MAX_ENTRIES = 65_536;

/** One event line ("add route 55d… prefix 10.77.21.0/24 from 0.0.0.0/0 installed yes …"); undefined for anything else. */
export function parseLine(line: string): BabelLine | undefined {
  const t = line.trim().split(/\s+/);
  const [kind, type, id] = t;
  if (!kind || !KINDS.has(kind) || !type || !id) return undefined;
  const fields: Record<string, string> = {};
  for (let i = 3; i + 1 < t.length; i += 2) fields[t[i] as string] = t[i + 1] as string;
  return { kind: kind as BabelLine['kind'], type, id, fields };
}

/** A source-specific route (from something narrower than everything) is not a plain destination route. */
const fromAnywhere = (from: string | undefined) => from === undefined || from.endsWith('/0');

/** babeld's routes and xroutes as the event lines leave them. */
export class BabelTable {
  readonly routes = new Map<string, BabelRoute>();
  readonly xroutes = new Map<string, BabelXroute>();

  /** Applies one event; true when it touched a route or an xroute. */
  apply(e: BabelLine): boolean {
    const table: Map<string, unknown> | undefined =
      e.type === 'route' ? this.routes : e.type === 'xroute' ? this.xroutes : undefined;
    if (!table) return false;
    if (e.kind === 'flush') return table.delete(e.id);
    const f = e.fields;
    const metric = Number(f.metric);
    if (!f.prefix || !fromAnywhere(f.from) || !Number.isInteger(metric)) return false;
    if (!table.has(e.id) && table.size >= MAX_ENTRIES) return false;
    if (e.type === 'xroute') this.xroutes.set(e.id, { prefix: f.prefix, metric });
    else
      this.routes.set(e.id, {
        prefix: f.prefix,
        installed: f.installed === 'yes',
        metric,
        via: f.via ?? '',
        iface: f.if ?? '',
      });
    return true;
  }

  clear(): void {
    this.routes.clear();
    this.xroutes.clear();
  }
}

/**
 * A `monitor` session with babeld. Emits 'ready' once the first dump is in, 'change' when a
 * route or xroute changes after that, 'down' (with why) when the session ends; `table` holds
 * what babeld said.
 */
export class BabelMonitor extends EventEmitter<{ ready: []; change: []; down: [why: string] }> {
  readonly table = new BabelTable();
  private socket: Socket | undefined;
  private buffer = '';
  private phase: 'banner' | 'dump' | 'live' = 'banner';
  private ended = false;

  constructor(private readonly target: BabelTarget) {
    super();
  }

  get ready(): boolean {
    return this.phase === 'live';
  }

  open(): void {
    const s =
      'path' in this.target ? connect(this.target.path) : connect({ host: '::1', port: this.target.port });
    this.socket = s;
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => this.onData(chunk));
    s.on('error', (err) => this.end(err.message));
    s.on('close', () => this.end('babeld closed the connection'));
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl = this.buffer.indexOf('\n');
    while (nl >= 0 && !this.ended) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      this.onLine(line);
      nl = this.buffer.indexOf('\n');
    }
    if (this.buffer.length > MAX_LINE) this.end(`a line longer than ${MAX_LINE} bytes: not babeld`);
  }

  private onLine(line: string): void {
    if (this.phase === 'banner') {
      if (line === 'ok') {
        this.phase = 'dump';
        this.socket?.write('monitor\n');
      } else if (!/^(BABEL 1\.|version |host |my-id )/.test(line)) {
        this.end(`"${line.slice(0, 60)}" is not babeld's local protocol`);
      }
      return;
    }
    if (line === 'ok') {
      if (this.phase === 'dump') {
        this.phase = 'live';
        this.emit('ready');
      }
      return;
    }
    if (line === 'bad' || line.startsWith('no')) {
      this.end(`babeld refused monitor: ${line.slice(0, 80)}`);
      return;
    }
    const e = parseLine(line);
    if (e && this.table.apply(e) && this.phase === 'live') this.emit('change');
  }

  private end(why: string): void {
    if (this.ended) return;
    this.ended = true;
    this.socket?.destroy();
    this.table.clear();
    this.emit('down', why);
  }

  close(): void {
    this.ended = true;
    this.socket?.destroy();
  }
}
