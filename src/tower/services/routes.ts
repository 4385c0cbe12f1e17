/**
 * The services API (docs/api/openapi.yaml): the registry with each service's golden
 * signals, the service graph, one service's series against its objective, the tower's own
 * declarations (read, check, replace: operator role) and the nodes' refused declarations.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { type Context, Hono } from 'hono';
import type { Role } from '../api/tokens.js';
import type { HealthThresholds } from './model.js';
import type { ServiceRegistry } from './registry.js';
import { type SignalWindow, serviceGraph, serviceRows, serviceSeries } from './signals.js';

type Env = { Variables: { user: { name: string; role: Role } } };

export interface ServicesDeps {
  db: DuckDBConnection;
  registry: ServiceRegistry;
  thresholds: HealthThresholds;
  /** The query's window (from, to, last), as every other route reads it. */
  window: (c: Context) => SignalWindow;
}

const STEP = /^(\d{1,6})(s|m)$/;

export function servicesApi(deps: ServicesDeps): Hono<Env> {
  const { db, registry, thresholds } = deps;
  const app = new Hono<Env>();
  app.get('/', async (c) => c.json(await serviceRows(db, registry.services, deps.window(c), thresholds)));
  app.get('/graph', async (c) =>
    c.json(await serviceGraph(db, registry.services, deps.window(c), thresholds)),
  );
  app.get('/refused', (c) => c.json(registry.refusals));
  app.get('/declared', (c) => c.json(registry.towerDeclared));
  app.post('/check', async (c) => {
    const body = await c.req.json().catch(() => undefined);
    const problem = registry.check(body);
    return c.json(problem ? { ok: false, errors: [problem] } : { ok: true, errors: [] });
  });
  app.put('/', async (c) => {
    if (c.get('user').role !== 'operator')
      return c.json({ error: 'declaring services needs the operator role' }, 403);
    const body = await c.req.json().catch(() => undefined);
    const problem = registry.setTower(body);
    if (problem) return c.json({ error: `the services were refused: ${problem}`, errors: [problem] }, 409);
    return c.json({ services: registry.services.map((s) => s.name) });
  });
  app.get('/:name', async (c) => {
    const row = (await serviceRows(db, registry.services, deps.window(c), thresholds)).find(
      (r) => r.name === c.req.param('name'),
    );
    return row ? c.json(row) : c.json({ error: `no service "${c.req.param('name').slice(0, 64)}"` }, 404);
  });
  app.get('/:name/series', async (c) => {
    const service = registry.get(c.req.param('name'));
    if (!service) return c.json({ error: `no service "${c.req.param('name').slice(0, 64)}"` }, 404);
    const step = STEP.exec(c.req.query('step') ?? '10s');
    if (!step) return c.json({ error: 'step must be a duration like 10s or 1m' }, 400);
    const stepMs = Number(step[1]) * (step[2] === 'm' ? 60_000 : 1000);
    return c.json(await serviceSeries(db, registry.services, service, deps.window(c), stepMs));
  });
  return app;
}
