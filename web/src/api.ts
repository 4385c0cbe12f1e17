/**
 * The tower's query API as the page uses it (docs/api/openapi.yaml): the answers typed by
 * the tower's own declarations (src/tower/api/*-types.ts, imported as types only, so no
 * server code enters the bundle; the live feed's and the mesh's are imported where they
 * are read), the time window and filters as query parameters, the login cookie sent by
 * the browser.
 */

export type * from '../../src/tower/api/forward-types.js';
export type * from '../../src/tower/api/node-types.js';
export type * from '../../src/tower/api/qos-types.js';
export type * from '../../src/tower/api/query-types.js';
export type * from '../../src/tower/api/user-types.js';
export type {
  AgentEventRow as AgentEvent,
  Locality,
  MonitorSettings,
  Position,
} from '../../src/tower/model.js';

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
