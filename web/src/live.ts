/**
 * The tower's live feed (GET /api/v1/live, server-sent events): one small aggregate per push,
 * at least once a second. Re-opened when the filter changes, so its numbers match the page.
 */
import type { LiveUpdate } from '../../src/tower/api/live-types.js';
import { query } from './api.js';
import type { Filter } from './state.js';

export type { LiveRequest, LiveUpdate } from '../../src/tower/api/live-types.js';

type Listener = (u: LiveUpdate) => void;

/** Rates over the last RATE_SPAN_MS of updates. */
const RATE_SPAN_MS = 5000;

class LiveFeed {
  private source: EventSource | undefined;
  private readonly listeners = new Set<Listener>();
  private readonly statusListeners = new Set<() => void>();
  private history: LiveUpdate[] = [];
  connected = false;
  lastUpdateMs = 0;
  /** Difference between the tower's clock and this browser's (tower − browser), ms. */
  clockOffsetMs = 0;

  private filter: Filter = {};
  private url: string | undefined;

  open(filter: Filter): void {
    this.filter = filter;
    this.close();
    this.history = [];
    const es = new EventSource(
      `/api/v1/live${query({ ip: filter.ip, locality: filter.locality, node: filter.node, url: this.url })}`,
    );
    this.source = es;
    es.addEventListener('hello', (e) => {
      const hello = JSON.parse((e as MessageEvent<string>).data) as { t: number };
      this.clockOffsetMs = hello.t - Date.now();
      this.setConnected(true);
    });
    es.addEventListener('update', (e) => {
      const u = JSON.parse((e as MessageEvent<string>).data) as LiveUpdate;
      this.lastUpdateMs = Date.now();
      this.history.push(u);
      const cutoff = u.t - RATE_SPAN_MS;
      while (this.history.length && (this.history[0]?.t ?? 0) < cutoff) this.history.shift();
      this.setConnected(true);
      for (const fn of this.listeners) fn(u);
    });
    es.onerror = () => this.setConnected(false);
  }

  /** The HTTP page's URL filter, applied by the tower before it picks the newest lines to send. */
  setUrl(url: string | undefined): void {
    if (url === this.url) return;
    this.url = url;
    this.open(this.filter);
  }

  close(): void {
    this.source?.close();
    this.source = undefined;
    this.setConnected(false);
  }

  private setConnected(v: boolean): void {
    if (this.connected === v) return;
    this.connected = v;
    for (const fn of this.statusListeners) fn();
  }

  on(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onStatus(fn: () => void): () => void {
    this.statusListeners.add(fn);
    return () => this.statusListeners.delete(fn);
  }

  /** Per-second rates over the last few seconds of updates. */
  rates(): { flows: number; bits: number; requests: number; errors: number } {
    const first = this.history[0];
    const last = this.history[this.history.length - 1];
    if (!first || !last) return { flows: 0, bits: 0, requests: 0, errors: 0 };
    const spanS = Math.max(1, (last.t - first.sinceMs) / 1000);
    let flows = 0;
    let bytes = 0;
    let requests = 0;
    let errors = 0;
    for (const u of this.history) {
      flows += u.flows.records;
      bytes += u.flows.bytes;
      requests += u.http.requests;
      errors += u.http.errors;
    }
    return {
      flows: flows / spanS,
      bits: (bytes * 8) / spanS,
      requests: requests / spanS,
      errors: errors / spanS,
    };
  }
}

export const live = new LiveFeed();
