/**
 * What every page shares: the time window (live, a preset, or custom), the filter set by
 * clicking a pie slice, and the live feed's latest update. Pages subscribe and redraw.
 */
import type { Locality } from './api.js';
import { query } from './api.js';

export type WindowMode = 'live' | '5m' | '1h' | '24h' | 'custom';

export interface TimeWindow {
  mode: WindowMode;
  /** For presets: the moment the window was chosen (or refreshed); for custom: the chosen ends. */
  fromMs: number;
  toMs: number;
}

export interface Filter {
  ip?: string | undefined;
  locality?: Locality | undefined;
  node?: string | undefined;
}

const SPANS: Record<Exclude<WindowMode, 'custom'>, number> = {
  live: 5 * 60_000,
  '5m': 5 * 60_000,
  '1h': 3_600_000,
  '24h': 86_400_000,
};

type Listener = () => void;

class State {
  window: TimeWindow = { mode: 'live', fromMs: 0, toMs: 0 };
  filter: Filter = {};
  private readonly listeners = new Set<Listener>();

  on(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  get live(): boolean {
    return this.window.mode === 'live';
  }

  setMode(mode: Exclude<WindowMode, 'custom'>): void {
    const now = Date.now();
    this.window = { mode, fromMs: now - SPANS[mode], toMs: now };
    this.changed();
  }

  setCustom(fromMs: number, toMs: number): void {
    this.window = { mode: 'custom', fromMs, toMs };
    this.changed();
  }

  setFilter(f: Filter): void {
    this.filter = f;
    this.changed();
  }

  /** The window as query parameters; live windows slide with the clock. */
  windowParams(): { from: number; to: number } {
    if (this.live) {
      const now = Date.now();
      return { from: now - SPANS.live, to: now };
    }
    return { from: this.window.fromMs, to: this.window.toMs };
  }

  /** Window and filter as a query string for the API. */
  params(extra: Record<string, string | number | undefined> = {}, withFilter = true): string {
    const f = withFilter ? this.filter : {};
    return query({ ...this.windowParams(), ip: f.ip, locality: f.locality, node: f.node, ...extra });
  }
}

export const state = new State();
state.setMode('live');
