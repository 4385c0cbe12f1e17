/**
 * The dashboard's live feed: every batch the control plane stores is folded, per subscriber
 * and its filters, into small aggregates (records, bytes and conversations by locality and
 * node, HTTP requests and errors by status, the newest request lines), and pushed as one
 * server-sent event shortly after the batch arrives — at most every FLUSH_MIN_MS, and at
 * least every HEARTBEAT_MS so a page always knows the feed is alive. Raw records never
 * cross: a page gets one message of bounded size however many flows per second come in.
 */
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { FlowRow, HttpRow, IngestBatch, Locality } from '../model.js';
import type { LiveUpdate } from './live-types.js';

export type { LiveRequest, LiveUpdate } from './live-types.js';

export interface LiveFilter {
  node?: string | undefined;
  ip?: string | undefined;
  locality?: Locality | undefined;
  /** Only HTTP lines whose URL contains this (case-insensitive); flows are not filtered by it. */
  url?: string | undefined;
}

const FLUSH_MIN_MS = 100;
const HEARTBEAT_MS = 1000;
const RECENT_MAX = 100;
const QUEUE_MAX = 60;
const LOCALITIES: Locality[] = ['intra', 'inter', 'external'];

function matches(f: LiveFilter, r: { node: string; src: string; dst: string; locality: Locality }): boolean {
  if (f.node && r.node !== f.node) return false;
  if (f.locality && r.locality !== f.locality) return false;
  if (f.ip && r.src !== f.ip && r.dst !== f.ip) return false;
  return true;
}

/** The aggregates of one subscriber between two pushes. */
class Pending {
  private update!: LiveUpdate;
  private conversations!: Record<Locality, Set<string>>;
  private lastPush = Date.now();

  constructor() {
    this.reset(this.lastPush);
  }

  private reset(now: number): void {
    const zero = () => ({ records: 0, bytes: 0, packets: 0, conversations: 0 });
    this.update = {
      t: now,
      sinceMs: now,
      flows: {
        records: 0,
        bytes: 0,
        packets: 0,
        byLocality: { intra: zero(), inter: zero(), external: zero() },
      },
      nodes: {},
      http: { requests: 0, responses: 0, errors: 0, byStatus: {} },
      recent: [],
      recentDropped: 0,
    };
    this.conversations = { intra: new Set(), inter: new Set(), external: new Set() };
  }

  addFlow(r: FlowRow): void {
    const u = this.update;
    const loc = u.flows.byLocality[r.locality];
    u.flows.records++;
    loc.records++;
    this.conversations[r.locality].add(`${r.protocol} ${r.src}:${r.srcPort} ${r.dst}:${r.dstPort}`);
    const node = u.nodes[r.node] ?? { bytes: 0, records: 0 };
    u.nodes[r.node] = node;
    node.records++;
    // Egress only, as the query API counts throughput: a packet crossing a node counts once.
    if (r.direction === 'egress') {
      u.flows.bytes += r.bytes;
      u.flows.packets += r.packets;
      loc.bytes += r.bytes;
      loc.packets += r.packets;
      node.bytes += r.bytes;
    }
  }

  /**
   * A request crossing a node's switch is seen on two of its ports: the rows of one exchange
   * in a batch (connection + method + URL, or connection + status) count as often as the
   * interface that saw them most often — once, as the query API counts them.
   */
  addHttp(rows: HttpRow[]): void {
    const u = this.update;
    const requests = new Map<string, { first: HttpRow; seen: Map<string, number> }>();
    const responses = new Map<string, { status: number; seen: Map<string, number> }>();
    const statusOf = new Map<string, number>();
    for (const r of rows) {
      const conn = `${r.src}:${r.srcPort} ${r.dst}:${r.dstPort}`;
      const at = `${r.node} ${r.iface}`;
      if (r.response) {
        const key = `${conn} ${r.status}`;
        const e = responses.get(key) ?? { status: r.status, seen: new Map<string, number>() };
        responses.set(key, e);
        e.seen.set(at, (e.seen.get(at) ?? 0) + 1);
        statusOf.set(conn, r.status);
      } else {
        const key = `${conn} ${r.method} ${r.url}`;
        const e = requests.get(key) ?? { first: r, seen: new Map<string, number>() };
        requests.set(key, e);
        e.seen.set(at, (e.seen.get(at) ?? 0) + 1);
      }
    }
    const times = (seen: Map<string, number>) => Math.max(...seen.values());
    for (const { status, seen } of responses.values()) {
      const n = times(seen);
      u.http.responses += n;
      u.http.byStatus[status] = (u.http.byStatus[status] ?? 0) + n;
      if (status >= 400) u.http.errors += n;
    }
    for (const { first: r, seen } of requests.values()) {
      u.http.requests += times(seen);
      u.recent.push({
        time: r.timeMs,
        node: r.node,
        method: r.method,
        url: r.url,
        host: r.host,
        src: r.src,
        dst: r.dst,
        dstPort: r.dstPort,
        locality: r.locality,
        status: statusOf.get(`${r.dst}:${r.dstPort} ${r.src}:${r.srcPort}`) ?? null,
      });
    }
    const over = u.recent.length - RECENT_MAX;
    if (over > 0) {
      u.recent.splice(0, over);
      u.recentDropped += over;
    }
  }

  get empty(): boolean {
    return this.update.flows.records === 0 && this.update.http.requests + this.update.http.responses === 0;
  }

  get msSincePush(): number {
    return Date.now() - this.lastPush;
  }

  take(): LiveUpdate {
    const now = Date.now();
    const u = this.update;
    u.t = now;
    u.sinceMs = this.lastPush;
    for (const loc of LOCALITIES) u.flows.byLocality[loc].conversations = this.conversations[loc].size;
    this.lastPush = now;
    this.reset(now);
    return u;
  }
}

interface Subscriber {
  filter: LiveFilter;
  pending: Pending;
  timer: NodeJS.Timeout | undefined;
  send: (u: LiveUpdate) => void;
  end: () => void;
}

export class LiveFeed {
  private readonly subscribers = new Set<Subscriber>();
  private heartbeat: NodeJS.Timeout | undefined;
  /** Pushes sent, for /health. */
  pushes = 0;

  get clients(): number {
    return this.subscribers.size;
  }

  /** Fold a stored batch into every subscriber's pending update; push soon. */
  add(batch: IngestBatch): void {
    for (const s of this.subscribers) {
      let touched = false;
      for (const r of batch.flows) {
        if (!matches(s.filter, r)) continue;
        s.pending.addFlow(r);
        touched = true;
      }
      const url = s.filter.url?.toLowerCase();
      const http = batch.http.filter(
        // Responses carry no URL: keep them all, so statuses and error counts stay whole.
        (r) => matches(s.filter, r) && (!url || r.response || r.url.toLowerCase().includes(url)),
      );
      if (http.length) {
        s.pending.addHttp(http);
        touched = true;
      }
      if (touched) this.schedule(s);
    }
  }

  private schedule(s: Subscriber): void {
    if (s.timer) return;
    const wait = Math.max(0, FLUSH_MIN_MS - s.pending.msSincePush);
    s.timer = setTimeout(() => this.flush(s), wait);
  }

  private flush(s: Subscriber): void {
    clearTimeout(s.timer);
    s.timer = undefined;
    this.pushes++;
    s.send(s.pending.take());
  }

  /** `end` is called when the feed closes (the tower stops). Returns the unsubscribe function. */
  subscribe(filter: LiveFilter, send: (u: LiveUpdate) => void, end: () => void = () => {}): () => void {
    const s: Subscriber = { filter, pending: new Pending(), timer: undefined, send, end };
    this.subscribers.add(s);
    this.heartbeat ??= setInterval(() => {
      for (const sub of this.subscribers)
        if (!sub.timer && sub.pending.msSincePush >= HEARTBEAT_MS) this.flush(sub);
    }, HEARTBEAT_MS / 4);
    return () => {
      clearTimeout(s.timer);
      this.subscribers.delete(s);
      if (this.subscribers.size === 0) {
        clearInterval(this.heartbeat);
        this.heartbeat = undefined;
      }
    };
  }

  close(): void {
    for (const s of this.subscribers) {
      clearTimeout(s.timer);
      s.end();
    }
    this.subscribers.clear();
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}

/** GET /api/v1/live: the feed as server-sent events (`update`), filtered like the queries. */
export function liveStream(c: Context, feed: LiveFeed, filter: LiveFilter): Response {
  return streamSSE(c, async (stream) => {
    let id = 0;
    const queue: LiveUpdate[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    const end = () => {
      ended = true;
      wake?.();
    };
    const unsubscribe = feed.subscribe(
      filter,
      (u) => {
        // A page that stops reading (a background tab) holds at most a minute of updates.
        if (queue.length >= QUEUE_MAX) queue.shift();
        queue.push(u);
        wake?.();
      },
      end,
    );
    stream.onAbort(end);
    await stream.writeSSE({
      event: 'hello',
      data: JSON.stringify({ t: Date.now(), heartbeatMs: HEARTBEAT_MS }),
    });
    while (!ended && !stream.aborted && !stream.closed) {
      const u = queue.shift();
      if (!u) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
        continue;
      }
      await stream.writeSSE({ event: 'update', id: String(++id), data: JSON.stringify(u) });
    }
    unsubscribe();
  });
}
