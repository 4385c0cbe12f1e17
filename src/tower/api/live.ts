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
import { conversationKey, counted, countsVolume, type Filter, httpLineKey } from './counting.js';
import type { LiveUpdate } from './live-types.js';

export type { LiveRequest, LiveUpdate } from './live-types.js';

/** The queries' filter (counting.ts), and a URL for the request lines. */
export interface LiveFilter extends Filter {
  /** Only HTTP lines whose URL contains this (case-insensitive); flows are not filtered by it. */
  url?: string | undefined;
}

const FLUSH_MIN_MS = 100;
const HEARTBEAT_MS = 1000;
const RECENT_MAX = 100;
const QUEUE_MAX = 60;
const LOCALITIES: Locality[] = ['intra', 'inter', 'external'];
/** How long an HTTP line is remembered, so its copy from another port or node counts once. */
const LINES_KEPT_MS = 10_000;
const LINE_BUCKET_MS = 100;

/** The HTTP lines counted lately, by their time to 100 ms (counting.ts's httpLineKey). */
class SeenLines {
  private readonly byBucket = new Map<number, Set<string>>();

  /** True the first time a line (or a copy of it) comes. */
  first(r: HttpRow): boolean {
    const bucket = Math.floor(r.timeMs / LINE_BUCKET_MS);
    let keys = this.byBucket.get(bucket);
    if (!keys) {
      keys = new Set();
      this.byBucket.set(bucket, keys);
    }
    const key = httpLineKey(r);
    if (keys.has(key)) return false;
    keys.add(key);
    return true;
  }

  forgetBefore(ms: number): void {
    const oldest = Math.floor(ms / LINE_BUCKET_MS);
    for (const bucket of this.byBucket.keys()) if (bucket < oldest) this.byBucket.delete(bucket);
  }
}

/** The aggregates of one subscriber between two pushes. */
class Pending {
  private update!: LiveUpdate;
  private conversations!: Record<Locality, Set<string>>;
  private readonly lines = new SeenLines();
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
    this.conversations[r.locality].add(conversationKey(r));
    const node = u.nodes[r.node] ?? { bytes: 0, records: 0 };
    u.nodes[r.node] = node;
    node.records++;
    if (countsVolume(r)) {
      u.flows.bytes += r.bytes;
      u.flows.packets += r.packets;
      loc.bytes += r.bytes;
      loc.packets += r.packets;
      node.bytes += r.bytes;
    }
  }

  /** Each line once, its copies from other ports and nodes aside; a request with the status of a response in the same batch. */
  addHttp(rows: HttpRow[]): void {
    const u = this.update;
    const statusOf = new Map<string, number>();
    const requests: HttpRow[] = [];
    for (const r of rows) {
      if (r.response) statusOf.set(`${r.src}:${r.srcPort} ${r.dst}:${r.dstPort}`, r.status);
      if (!this.lines.first(r)) continue;
      if (r.response) {
        u.http.responses++;
        u.http.byStatus[r.status] = (u.http.byStatus[r.status] ?? 0) + 1;
        if (r.status >= 400) u.http.errors++;
      } else {
        u.http.requests++;
        requests.push(r);
      }
    }
    for (const r of requests) {
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
    this.lines.forgetBefore(now - LINES_KEPT_MS);
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
        if (!counted(s.filter, r)) continue;
        s.pending.addFlow(r);
        touched = true;
      }
      const url = s.filter.url?.toLowerCase();
      const http = batch.http.filter(
        // Responses carry no URL: keep them all, so statuses and error counts stay whole.
        (r) => counted(s.filter, r) && (!url || r.response || r.url.toLowerCase().includes(url)),
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
