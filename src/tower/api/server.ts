/**
 * The tower's query API: JSON over HTTPS (the tower's certificate), described by
 * docs/api/openapi.yaml. Every request needs a token (Authorization: Bearer) or the
 * dashboard's session cookie; changes need the operator role. Failed tokens are throttled
 * per client address; query windows, steps and limits are bounded; a failure is answered
 * with an incident id, its reason only logged.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { type Context, Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { z } from 'zod';
import { towerLog as log } from '../../shared/log.js';
import type { LocalityMap } from '../ingest/locality.js';
import type { Locality } from '../model.js';
import { qosApi } from '../qos/routes.js';
import type { QosService } from '../qos/service.js';
import type { Registry } from '../registry.js';
import { type ServicesDeps, servicesApi } from '../services/routes.js';
import type { DuckStore } from '../store/duckdb.js';
import type { ForwardView } from './forward-types.js';
import { type LiveFeed, liveStream } from './live.js';
import { meshEnds, pairLinks } from './mesh.js';
import { linkSeries, meshEvents } from './mesh-history.js';
import { meshPaths, newestRoutes } from './mesh-paths.js';
import type { MeshEvents, MeshView } from './mesh-types.js';
import type { NodeInfo } from './node-types.js';
import {
  conversations,
  endpointPairs,
  httpRequests,
  httpStatus,
  nodeSeqs,
  pies,
  summary,
  throughput,
  topTalkers,
  type Window,
} from './queries.js';
import type { MapData } from './query-types.js';
import { LoginThrottle, SESSION_MAX_AGE_S, Sessions } from './sessions.js';
import { StaticSite } from './static.js';
import type { Tokens, User } from './tokens.js';

export const OPENAPI_PATH = new URL('../../../docs/api/openapi.yaml', import.meta.url);

export interface ApiDeps {
  store: DuckStore;
  registry: Registry;
  places: LocalityMap;
  tokens: Tokens;
  /** Counters of the other stages, shown by /health. */
  health: () => Record<string, unknown>;
  /** The dashboard's live feed (GET /api/v1/live); without it the route answers 503. */
  live?: LiveFeed;
  /** The QoS policy service (/api/v1/qos); without it the routes are absent. */
  qos?: QosService;
  /** The service registry and health thresholds (/api/v1/services); without it the routes are absent. */
  services?: Omit<ServicesDeps, 'db' | 'window'>;
  /** The built dashboard served at /; by default web/dist. */
  site?: StaticSite;
  /** Told of every API request answered: path, status, time taken (for the latency metric). */
  onRequest?: (path: string, status: number, ms: number) => void;
  /** Where the records go one way (GET /api/v1/forward); null: nowhere. */
  forward?: () => ForwardView | null;
  /** Longest query window (default 31 days) and failed tokens per address per minute (default 5). */
  limits?: { queryWindowDays: number; loginFailures: number };
}

const COOKIE = 'tacmesh_session';

type Env = { Variables: { user: User } };

const DURATION = /^(\d+)(s|m|h|d)$/;
const UNIT = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Times past this (the year 2255) are no time a record can have. */
const MAX_TIME_MS = 9e12;
const DEFAULT_WINDOW_DAYS = 31;
/** Most buckets one throughput query may have. */
export const MAX_BUCKETS = 10_000;

function parseTime(v: string | undefined, what: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = /^\d{1,16}$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n) || n < 0 || n > MAX_TIME_MS)
    throw new BadRequest(`${what} "${v.slice(0, 40)}" is neither ms since the epoch nor an ISO time`);
  return n;
}

class BadRequest extends Error {}

/** A whole number in [min, max] from the query, or `fallback` when absent. */
function intParam(c: Context, name: string, fallback: number, min: number, max: number): number {
  const v = c.req.query(name);
  if (v === undefined || v === '') return fallback;
  const n = /^\d{1,16}$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= min && n <= max)) throw new BadRequest(`${name} must be a whole number from ${min} to ${max}`);
  return n;
}

/** ?from&to (ms or ISO) or ?last=5m|1h|24h; default the last 5 minutes; at most `maxDays` long. */
export function windowOf(c: Context, maxDays = DEFAULT_WINDOW_DAYS): Window {
  const q = (k: string) => c.req.query(k);
  const now = Date.now();
  let fromMs = parseTime(q('from'), 'from');
  const toMs = parseTime(q('to'), 'to') ?? now;
  const last = q('last');
  if (fromMs === undefined) {
    const m = DURATION.exec(last ?? '5m');
    if (!m || m[1]!.length > 9)
      throw new BadRequest(`last "${last?.slice(0, 40)}" is not a duration like 30s, 5m, 1h, 7d`);
    fromMs = toMs - Number(m[1]) * UNIT[m[2] as keyof typeof UNIT];
  }
  if (fromMs > toMs) throw new BadRequest('from is after to');
  if (toMs - fromMs > maxDays * 86_400_000)
    throw new BadRequest(`the time window is longer than ${maxDays} days, the longest a query may cover`);
  const locality = q('locality');
  if (locality && !['intra', 'inter', 'external'].includes(locality)) {
    throw new BadRequest(`locality "${locality}" is not one of intra, inter, external`);
  }
  return {
    fromMs,
    toMs,
    node: q('node'),
    iface: q('iface'),
    ip: q('ip'),
    locality: locality as Locality | undefined,
  };
}

const MonitorChange = z
  .object({
    l3: z.boolean(),
    l4: z.boolean(),
    l7: z.boolean(),
    sample: z.number().int().min(1).max(1_000_000),
    intervalMs: z.number().int().min(100).max(60_000),
  })
  .partial()
  .strict();

/** ?step in ms for buckets over the window w: by default about 120 buckets of at least a second, never more than MAX_BUCKETS. */
function stepOf(c: Context, w: Window): number {
  const span = w.toMs - w.fromMs;
  const fallback = Math.max(1000, Math.ceil(span / 120), Math.ceil(span / MAX_BUCKETS));
  const step = intParam(c, 'step', fallback, 1000, 86_400_000);
  if (span / step > MAX_BUCKETS)
    throw new BadRequest(`step ${step} ms makes more than ${MAX_BUCKETS} buckets of this window`);
  return step;
}

/** A node name in a path: what a node may be called. */
function nodeParam(c: Context, name: string): string {
  const v = c.req.param(name) ?? '';
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(v)) throw new BadRequest(`"${v.slice(0, 40)}" is not a node name`);
  return v;
}

export function buildApi(deps: ApiDeps): Hono<Env> {
  const app = new Hono<Env>();
  const db = deps.store.reader;
  const maxDays = deps.limits?.queryWindowDays ?? DEFAULT_WINDOW_DAYS;
  const win = (c: Context) => windowOf(c, maxDays);
  const sessions = new Sessions(deps.tokens);
  const throttle = new LoginThrottle(deps.limits?.loginFailures ?? 5);
  const address = (c: Context) => {
    try {
      return getConnInfo(c).remote.address ?? 'unknown';
    } catch {
      return 'unknown';
    }
  };

  app.onError((err, c) => {
    if (err instanceof BadRequest) return c.json({ error: err.message }, 400);
    // The reason stays in the log: a client learns nothing of the tower's insides.
    const incident = randomBytes(6).toString('hex');
    log.error({ path: c.req.path, incident, err }, 'API request failed');
    return c.json({ error: 'internal error', incident }, 500);
  });

  app.use('/api/v1/*', async (c, next) => {
    const t0 = performance.now();
    await next();
    deps.onRequest?.(c.req.path, c.res.status, performance.now() - t0);
  });

  app.use('/api/v1/*', async (c, next) => {
    if (c.req.path === '/api/v1/openapi.yaml' || c.req.path === '/api/v1/login') return next();
    const header = c.req.header('authorization');
    let user: User | undefined;
    if (header !== undefined) {
      const from = address(c);
      const wait = throttle.waitS(from);
      if (wait) return tooMany(c, wait);
      user = deps.tokens.check(header.startsWith('Bearer ') ? header.slice(7) : undefined);
      if (!user) throttle.failed(from);
    } else user = sessions.user(getCookie(c, COOKIE));
    if (!user) return c.json({ error: 'a valid token is required (Authorization: Bearer <token>)' }, 401);
    c.set('user', user);
    return next();
  });

  app.get('/api/v1/openapi.yaml', (c) =>
    c.body(readFileSync(OPENAPI_PATH, 'utf8'), 200, { 'content-type': 'application/yaml' }),
  );
  // The dashboard's login: a session id (not the token) goes into a cookie scripts cannot read.
  app.post('/api/v1/login', async (c) => {
    const from = address(c);
    const wait = throttle.waitS(from);
    if (wait) return tooMany(c, wait);
    const body = (await c.req.json().catch(() => undefined)) as { token?: unknown } | undefined;
    const token = typeof body?.token === 'string' ? body.token.trim() : undefined;
    const user = deps.tokens.check(token);
    if (!token || !user) {
      throttle.failed(from);
      log.warn({ from }, 'dashboard login refused');
      return c.json({ error: 'this token is not valid' }, 401);
    }
    setCookie(c, COOKIE, sessions.open(token), {
      httpOnly: true,
      secure: true,
      sameSite: 'Strict',
      path: '/',
      maxAge: SESSION_MAX_AGE_S,
    });
    log.info({ user: user.name, role: user.role }, 'dashboard login');
    return c.json(user);
  });
  app.post('/api/v1/logout', (c) => {
    sessions.close(getCookie(c, COOKIE));
    deleteCookie(c, COOKIE, { path: '/', secure: true });
    return c.json({ ok: true });
  });
  app.get('/api/v1/whoami', (c) => c.json(c.get('user')));
  app.get('/api/v1/health', (c) => c.json(deps.health()));

  app.get('/api/v1/nodes', (c) =>
    c.json(
      [...deps.registry.nodes.values()].map(
        (n): NodeInfo => ({
          name: n.name,
          connected: n.connected,
          via: n.via,
          subnets: n.subnets,
          slices: n.slices,
          position: n.position,
          software: n.software,
          firstSeen: n.firstSeenMs,
          lastSeen: n.lastSeenMs,
          clockSkewMs: n.clockSkewMs,
          status: n.status,
          monitor: n.monitor,
          monitorApplied: n.appliedMonitorVersion === n.monitor.version,
          recordsStored: n.recordsStored,
          events: n.events.slice(-50),
        }),
      ),
    ),
  );

  app.get('/api/v1/nodes/:name/seqs', async (c) => {
    const name = c.req.param('name');
    if (!deps.registry.nodes.has(name)) return c.json({ error: `no node named ${name}` }, 404);
    return c.json(await nodeSeqs(db, name, win(c)));
  });

  app.put('/api/v1/nodes/:name/monitoring', async (c) => {
    const user = c.get('user');
    if (user.role !== 'operator')
      return c.json({ error: 'changing monitoring needs the operator role' }, 403);
    const name = c.req.param('name');
    if (!deps.registry.nodes.has(name)) return c.json({ error: `no node named ${name}` }, 404);
    const body = MonitorChange.safeParse(await c.req.json().catch(() => undefined));
    if (!body.success) {
      const issue = body.error.issues[0];
      return c.json({ error: `${issue?.path.join('.') || 'body'}: ${issue?.message}` }, 400);
    }
    const settings = await deps.registry.setMonitor(name, body.data);
    log.info(
      { user: user.name, node: name, change: body.data, version: settings.version },
      'monitoring changed',
    );
    return c.json(settings);
  });

  if (deps.qos) app.route('/api/v1/qos', qosApi(deps.qos));
  if (deps.services) app.route('/api/v1/services', servicesApi({ ...deps.services, db, window: win }));

  const nodeOf = (address: string) => deps.places.endpoint(address).node;
  app.get('/api/v1/mesh', async (c) => {
    const nodes = [...deps.registry.nodes.values()];
    const routes = await newestRoutes(db);
    const view: MeshView = {
      nodes: nodes.map((n) => ({
        name: n.name,
        connected: n.connected,
        position: n.position,
        routes: routes.get(n.name)?.source ?? null,
      })),
      links: pairLinks(await meshEnds(db)),
      paths: meshPaths(
        nodes.map((n) => ({ name: n.name, prefixes: n.slices.flatMap((s) => s.subnets) })),
        routes,
        nodeOf,
      ),
    };
    return c.json(view);
  });
  app.get('/api/v1/forward', (c) => c.json(deps.forward?.() ?? null));
  app.get('/api/v1/mesh/links/:a/:b', async (c) => {
    const [a, b] = [nodeParam(c, 'a'), nodeParam(c, 'b')];
    const w = win(c);
    const series = await linkSeries(db, a, b, w, stepOf(c, w), nodeOf);
    if (!series)
      return c.json({ error: `no radio link between ${a} and ${b} was reported in this window` }, 404);
    return c.json(series);
  });
  app.get('/api/v1/mesh/events', async (c) => {
    const events: MeshEvents = {
      events: await meshEvents(db, win(c), intParam(c, 'limit', 200, 1, 2000), nodeOf),
    };
    return c.json(events);
  });
  app.get('/api/v1/summary', async (c) => c.json(await summary(db, win(c))));
  app.get('/api/v1/pies', async (c) => c.json(await pies(db, win(c))));
  app.get('/api/v1/talkers', async (c) =>
    c.json(await topTalkers(db, win(c), intParam(c, 'limit', 20, 1, 1000))),
  );
  app.get('/api/v1/throughput', async (c) => {
    const w = win(c);
    return c.json(await throughput(db, w, stepOf(c, w)));
  });
  app.get('/api/v1/flows', async (c) => {
    const dscp = intParam(c, 'dscp', -1, 0, 63);
    return c.json(
      await conversations(db, win(c), {
        dscp: dscp < 0 ? undefined : dscp,
        limit: intParam(c, 'limit', 100, 1, 5000),
      }),
    );
  });
  app.get('/api/v1/http', async (c) => {
    const status = intParam(c, 'status', 0, 100, 599);
    return c.json(
      await httpRequests(db, win(c), {
        status: status || undefined,
        url: c.req.query('url'),
        method: c.req.query('method'),
        limit: intParam(c, 'limit', 100, 1, 5000),
      }),
    );
  });
  app.get('/api/v1/http/status', async (c) => c.json(await httpStatus(db, win(c))));
  app.get('/api/v1/map', async (c) => {
    const pairs = await endpointPairs(db, win(c), deps.places);
    const nodes = [...deps.registry.nodes.values()].map((n) => ({
      name: n.name,
      position: n.position,
      connected: n.connected,
    }));
    return c.json({ nodes, pairs } satisfies MapData);
  });
  app.get('/api/v1/live', (c) => {
    if (!deps.live) return c.json({ error: 'this tower has no live feed' }, 503);
    const w = win(c);
    return liveStream(c, deps.live, {
      node: w.node,
      iface: w.iface,
      ip: w.ip,
      locality: w.locality,
      url: c.req.query('url'),
    });
  });
  app.all('/api/*', (c) => c.json({ error: `no such API route: ${c.req.method} ${c.req.path}` }, 404));
  const site = deps.site ?? new StaticSite();
  app.get('/*', (c) => site.serve(c));
  return app;
}

function tooMany(c: Context, waitS: number) {
  c.header('retry-after', String(waitS));
  return c.json({ error: `too many failed tokens from this address: try again in ${waitS} s` }, 429);
}

export interface ApiServer {
  port: number;
  close(): Promise<void>;
}

export async function startApi(
  app: Hono<Env>,
  listen: { host: string; port: number },
  tls: { cert: string; key: string },
): Promise<ApiServer> {
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve(
      {
        fetch: app.fetch,
        hostname: listen.host,
        port: listen.port,
        createServer,
        serverOptions: { cert: readFileSync(tls.cert), key: readFileSync(tls.key) },
      },
      () => resolve(s),
    );
    s.once('error', reject);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
