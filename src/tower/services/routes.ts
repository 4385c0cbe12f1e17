/**
 * The services API (docs/api/openapi.yaml): the registry with each service's golden
 * signals, the service graph, one service's series against its objective, the tower's own
 * declarations (read, check, replace: operator role) and the nodes' refused declarations.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { type Context, Hono } from 'hono';
import type { ServiceIntent } from '../api/services-types.js';
import type { Role } from '../api/tokens.js';
import type { QosPolicySpec } from '../qos/model.js';
import { classProblems } from './compile.js';
import type { HealthThresholds } from './model.js';
import type { RegisteredService, ServiceRegistry } from './registry.js';
import { type SignalWindow, serviceGraph, serviceRows, serviceSeries } from './signals.js';

type Env = { Variables: { user: { name: string; role: Role } } };

export interface ServicesDeps {
  db: DuckDBConnection;
  registry: ServiceRegistry;
  thresholds: HealthThresholds;
  /** The query's window (from, to, last), as every other route reads it. */
  window: (c: Context) => SignalWindow;
  /** QoS by service: each intent's state, and the operator's policy a guarantee needs a class of. */
  intent?: {
    of: (s: RegisteredService, p95Ms: number | null) => ServiceIntent | null;
    policy: () => QosPolicySpec;
  };
}

const STEP = /^(\d{1,6})(s|m)$/;

export function servicesApi(deps: ServicesDeps): Hono<Env> {
  const { db, registry, thresholds } = deps;
  const app = new Hono<Env>();
  const intentOf = deps.intent?.of ?? (() => null);
  const rows = (c: Context) => serviceRows(db, registry.services, deps.window(c), thresholds, intentOf);
  /** Why a set of services cannot be declared: it contradicts the nodes', or a guarantee has no class. */
  const refusal = (body: unknown) => {
    const trial = registry.check(body);
    if (trial.problem || !deps.intent) return trial.problem;
    return classProblems(trial.services, deps.intent.policy())[0]?.reason;
  };
  app.get('/', async (c) => c.json(await rows(c)));
  app.get('/graph', async (c) =>
    c.json(await serviceGraph(db, registry.services, deps.window(c), thresholds)),
  );
  app.get('/refused', (c) => c.json(registry.refusals));
  app.get('/declared', (c) => c.json(registry.towerDeclared));
  app.post('/check', async (c) => {
    const body = await c.req.json().catch(() => undefined);
    const problem = refusal(body);
    return c.json(problem ? { ok: false, errors: [problem] } : { ok: true, errors: [] });
  });
  app.put('/', async (c) => {
    if (c.get('user').role !== 'operator')
      return c.json({ error: 'declaring services needs the operator role' }, 403);
    const body = await c.req.json().catch(() => undefined);
    const problem = refusal(body) ?? registry.setTower(body);
    if (problem) return c.json({ error: `the services were refused: ${problem}`, errors: [problem] }, 409);
    return c.json({ services: registry.services.map((s) => s.name) });
  });
  const nameOf = (c: Context) => c.req.param('name') ?? '';
  const row = async (c: Context) => (await rows(c)).find((r) => r.name === nameOf(c));
  const missing = (c: Context) => c.json({ error: `no service "${nameOf(c).slice(0, 64)}"` }, 404);
  app.get('/:name', async (c) => {
    const r = await row(c);
    return r ? c.json(r) : missing(c);
  });
  app.get('/:name/intent', async (c) => {
    const r = await row(c);
    if (!r) return missing(c);
    return r.intent
      ? c.json(r.intent)
      : c.json({ error: `service "${r.name}" states no QoS intent (no guaranteeBps)` }, 404);
  });
  app.get('/:name/series', async (c) => {
    const service = registry.get(c.req.param('name'));
    if (!service) return missing(c);
    const step = STEP.exec(c.req.query('step') ?? '10s');
    if (!step) return c.json({ error: 'step must be a duration like 10s or 1m' }, 400);
    const stepMs = Number(step[1]) * (step[2] === 'm' ? 60_000 : 1000);
    return c.json(await serviceSeries(db, registry.services, service, deps.window(c), stepMs));
  });
  return app;
}
