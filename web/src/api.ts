/**
 * The tower's query API as the page uses it (docs/api/openapi.yaml): typed answers, the
 * time window and filters as query parameters, the login cookie sent by the browser.
 */

import type { AgentEventRow, Locality, MonitorSettings, Position } from '../../src/tower/model.js';

export type { AgentEventRow as AgentEvent, Locality, MonitorSettings, Position };

export interface User {
  name: string;
  role: 'viewer' | 'operator';
}

export interface PieSlice {
  ip: string;
  count: number;
}
export type Pies = Record<Locality | 'all', PieSlice[]>;

export interface Summary {
  conversations: number;
  bytes: number;
  flowRecords: number;
  httpRequests: number;
  httpErrors: number;
}

/** GET /http/status: responses per code, each response once. */
export type StatusCounts = { status: number; count: number }[];

export interface Talker {
  src: string;
  dst: string;
  locality: Locality;
  bytes: number;
  packets: number;
  conversations: number;
}

export interface Throughput {
  stepMs: number;
  series: Record<string, [number, number][]>;
}

export interface HttpRequest {
  time: number;
  node: string;
  iface?: string;
  src: string;
  dst: string;
  dstPort: number;
  method: string;
  url: string;
  host: string;
  truncated?: boolean;
  locality: Locality;
  status: number | null;
  latencyMs?: number | null;
}

export interface Place {
  node: string | null;
  position: Position | null;
  label: string | null;
}

export interface Pair {
  src: string;
  dst: string;
  locality: Locality;
  conversations: number;
  bytes: number;
  srcPlace: Place;
  dstPlace: Place;
}

export interface MapData {
  nodes: { name: string; position: Position | null; connected: boolean }[];
  pairs: Pair[];
}

export interface NodeInfo {
  name: string;
  connected: boolean;
  /** The neighbour the node reaches the tower through over the mesh; null when direct. */
  via: string | null;
  subnets: string[];
  slices: { name: string; subnets: string[]; bridge: string }[];
  position: Position | null;
  software: string;
  firstSeen: number;
  lastSeen: number;
  clockSkewMs: number;
  status: {
    timeMs?: number | string;
    health?: string;
    interfaces?: { name: string; up: boolean; monitored: boolean }[];
    monitorVersion?: number;
  } | null;
  monitor: MonitorSettings;
  monitorApplied: boolean;
  recordsStored: number;
  events: AgentEventRow[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Called when the API says the login is gone (401): the page shows the login form. */
let onUnauthorized: () => void = () => {};
export function whenUnauthorized(fn: () => void): void {
  onUnauthorized = fn;
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`/api/v1/${path}`, {
    credentials: 'same-origin',
    ...init,
    headers: { 'content-type': 'application/json', ...(init.headers ?? {}) },
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    if (res.status === 401 && path !== 'login' && path !== 'whoami') onUnauthorized();
    const message = (body as { error?: string } | undefined)?.error ?? `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, message);
  }
  return body as T;
}

export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
