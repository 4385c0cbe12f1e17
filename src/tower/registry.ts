/**
 * What the tower knows of each node: its hello (subnets, slices, position), whether it is
 * connected, its last status, its monitoring settings and what its agent reported. Feeds
 * the locality map and persists through the store, so a restarted tower still places
 * addresses before the nodes reconnect.
 */
import { towerLog as log } from '../shared/log.js';
import type { LocalityMap } from './ingest/locality.js';
import type { AgentEventRow, MonitorSettings, NodeRow, NodeStatusReport, Position, Slice } from './model.js';
import { DEFAULT_MONITOR_SETTINGS } from './model.js';
import type { DuckStore } from './store/duckdb.js';

export interface NodeState {
  name: string;
  subnets: string[];
  slices: Slice[];
  position: Position | null;
  software: string;
  connected: boolean;
  /** The neighbour the node's stream comes through over the mesh (its name when known); null when direct. */
  via: string | null;
  firstSeenMs: number;
  lastSeenMs: number;
  clockSkewMs: number;
  status: NodeStatusReport | null;
  monitor: MonitorSettings;
  /** The monitor settings version the node last reported applying. */
  appliedMonitorVersion: number;
  events: AgentEventRow[];
  recordsStored: number;
  /** Of recordsStored, those that came through a neighbour (since the tower started). */
  recordsRelayed: number;
}

const RECENT_EVENTS = 200;
/** A node's status is written to the store at most this often (it is kept in memory each time). */
const STATUS_SAVE_MS = 10_000;

/** Sends settings to a connected node; set by the control server per stream. */
export type MonitorPush = (settings: MonitorSettings) => void;

export class Registry {
  readonly nodes = new Map<string, NodeState>();
  private readonly pushers = new Map<string, MonitorPush>();
  private readonly statusSavedMs = new Map<string, number>();

  constructor(
    private readonly store: DuckStore,
    private readonly places: LocalityMap,
    /** limits.subnetsPerNode: stored subnets beyond it (from before the limit) are not indexed. */
    private readonly maxSubnets = Number.POSITIVE_INFINITY,
  ) {}

  async load(): Promise<void> {
    for (const row of await this.store.loadNodes()) {
      const position = row.lat === null || row.lon === null ? null : { lat: row.lat, lon: row.lon };
      let subnets = row.subnets;
      try {
        if (subnets.length > this.maxSubnets) throw new Error(`${subnets.length} subnets, above the limit`);
        this.places.setNode(row.name, subnets, position);
      } catch (err) {
        log.warn(
          { node: row.name, err },
          'stored subnets of a node dropped: it registers them again at its next hello',
        );
        subnets = [];
        this.places.setNode(row.name, [], position);
      }
      this.nodes.set(row.name, this.offline(row, subnets));
    }
  }

  /** A node as the store remembers it, not connected (with the subnets that were indexed). */
  private offline(row: NodeRow, subnets: string[]): NodeState {
    return {
      name: row.name,
      subnets,
      slices: row.slices,
      position: row.lat === null || row.lon === null ? null : { lat: row.lat, lon: row.lon },
      software: row.software,
      connected: false,
      via: null,
      firstSeenMs: row.firstSeenMs,
      lastSeenMs: row.lastSeenMs,
      clockSkewMs: 0,
      status: row.status,
      monitor: { ...DEFAULT_MONITOR_SETTINGS, ...row.monitor },
      appliedMonitorVersion: 0,
      events: [],
      recordsStored: 0,
      recordsRelayed: 0,
    };
  }

  private row(n: NodeState): NodeRow {
    return {
      name: n.name,
      subnets: n.subnets,
      slices: n.slices,
      lat: n.position?.lat ?? null,
      lon: n.position?.lon ?? null,
      software: n.software,
      firstSeenMs: n.firstSeenMs,
      lastSeenMs: n.lastSeenMs,
      status: n.status,
      monitor: n.monitor,
    };
  }

  async hello(
    hello: Pick<NodeState, 'name' | 'subnets' | 'slices' | 'position' | 'software' | 'clockSkewMs' | 'via'>,
    push: MonitorPush,
  ): Promise<NodeState> {
    const now = Date.now();
    const prev = this.nodes.get(hello.name);
    const via = hello.via && (this.places.endpoint(hello.via).node ?? hello.via);
    if (via !== (prev?.via ?? null)) {
      log.info(
        { node: hello.name, via: via ?? 'direct' },
        via ? 'node reached through a neighbour' : 'node reached directly',
      );
      // A first hello that comes direct is no change worth an event.
      if (prev || via) await this.store.appendNodeVia({ timeMs: now, node: hello.name, via });
    }
    const state: NodeState = {
      ...hello,
      via,
      connected: true,
      firstSeenMs: prev?.firstSeenMs ?? now,
      lastSeenMs: now,
      status: prev?.status ?? null,
      monitor: prev?.monitor ?? { ...DEFAULT_MONITOR_SETTINGS },
      appliedMonitorVersion: prev?.appliedMonitorVersion ?? 0,
      events: prev?.events ?? [],
      recordsStored: prev?.recordsStored ?? 0,
      recordsRelayed: prev?.recordsRelayed ?? 0,
    };
    this.nodes.set(hello.name, state);
    this.pushers.set(hello.name, push);
    this.places.setNode(hello.name, hello.subnets, hello.position);
    await this.store.saveNode(this.row(state));
    return state;
  }

  /**
   * A brigade's node, which a division knows from the bus only (docs/bus.md, Echelons):
   * listed under its qualified name, never connected here; remembered by the store.
   */
  async brigadeNode(name: string): Promise<void> {
    if (this.nodes.has(name)) return;
    const now = Date.now();
    const row: NodeRow = {
      name,
      subnets: [],
      slices: [],
      lat: null,
      lon: null,
      software: '',
      firstSeenMs: now,
      lastSeenMs: now,
      status: null,
      monitor: {},
    };
    const state = this.offline(row, []);
    this.nodes.set(name, state);
    await this.store.saveNode(this.row(state));
  }

  /** Takes a subnet from a node's registration (tower.yaml gives it to another node). */
  async dropSubnet(name: string, subnet: string): Promise<void> {
    const n = this.nodes.get(name);
    if (!n?.subnets.includes(subnet)) return;
    n.subnets = n.subnets.filter((s) => s !== subnet);
    this.places.setNode(name, n.subnets, n.position);
    await this.store.saveNode(this.row(n));
  }

  seen(name: string, stored = 0): void {
    const n = this.nodes.get(name);
    if (!n) return;
    n.lastSeenMs = Date.now();
    n.recordsStored += stored;
    if (n.via) n.recordsRelayed += stored;
  }

  disconnected(name: string, push: MonitorPush): void {
    // A newer stream of the same node may have replaced this one already.
    if (this.pushers.get(name) !== push) return;
    this.pushers.delete(name);
    const n = this.nodes.get(name);
    if (n) n.connected = false;
  }

  async status(name: string, status: NodeStatusReport): Promise<void> {
    const n = this.nodes.get(name);
    if (!n) return;
    n.status = status;
    n.appliedMonitorVersion = status.monitorVersion;
    n.lastSeenMs = Date.now();
    if (n.lastSeenMs - (this.statusSavedMs.get(name) ?? 0) < STATUS_SAVE_MS) return;
    this.statusSavedMs.set(name, n.lastSeenMs);
    await this.store.saveNode(this.row(n));
  }

  async event(e: AgentEventRow): Promise<void> {
    const n = this.nodes.get(e.node);
    if (n) {
      n.events.push(e);
      if (n.events.length > RECENT_EVENTS) n.events.shift();
    }
    await this.store.appendEvent(e);
  }

  /** An operator's change: stored, then pushed to the node if it is connected. */
  async setMonitor(
    name: string,
    change: Partial<Omit<MonitorSettings, 'version'>>,
  ): Promise<MonitorSettings> {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node named ${name}`);
    n.monitor = { ...n.monitor, ...change, version: n.monitor.version + 1 };
    await this.store.saveNode(this.row(n));
    this.pushers.get(name)?.(n.monitor);
    return n.monitor;
  }
}
