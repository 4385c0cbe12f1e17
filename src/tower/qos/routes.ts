/**
 * The QoS API (docs/api/openapi.yaml): read the policy with each node's state, validate a
 * draft, set a policy (operator role; answered once the connected nodes run it or refused
 * it, at most 1 s later), and read the audit log.
 */
import { Hono } from 'hono';
import type { QosApplied, QosAuditLog, QosCheck, QosNodeView, QosView } from '../api/qos-types.js';
import type { Role } from '../api/user-types.js';
import type { QosService } from './service.js';
import { validatePolicy } from './validate.js';

type Env = { Variables: { user: { name: string; role: Role } } };

export const SETTLE_MS = 1000;

export function qosApi(qos: QosService): Hono<Env> {
  const app = new Hono<Env>();
  const nodes = (): Record<string, QosNodeView> =>
    Object.fromEntries(
      [...qos.nodes].map(([name, n]) => [
        name,
        {
          connected: n.connected,
          applied: n.applied,
          refused: n.refused ?? null,
          reportedMs: n.reportedMs,
          rates: n.rates,
        },
      ]),
    );
  app.get('/', (c) => c.json({ ...qos.policy, nodes: nodes() } satisfies QosView));
  app.post('/validate', async (c) => {
    const v = validatePolicy(await c.req.json().catch(() => undefined));
    return c.json((v.ok ? { ok: true, errors: [] } : { ok: false, errors: v.errors }) satisfies QosCheck);
  });
  app.put('/', async (c) => {
    const user = c.get('user');
    if (user.role !== 'operator')
      return c.json({ error: 'changing the QoS policy needs the operator role' }, 403);
    const body = await c.req.json().catch(() => undefined);
    const result = await qos.set(user.name, body);
    if (result.unavailable) return c.json({ error: result.unavailable }, 503);
    if (!result.ok || result.version === undefined)
      return c.json(
        { error: `the policy was refused: ${result.errors?.join('; ')}`, errors: result.errors },
        400,
      );
    const settled = await qos.settled(result.version, SETTLE_MS);
    return c.json({ version: result.version, settled, nodes: nodes() } satisfies QosApplied);
  });
  app.get('/audit', async (c) => {
    const limit = Number(c.req.query('limit') ?? 200);
    const log: QosAuditLog = await qos.auditLog(
      Number.isFinite(limit) ? Math.min(1000, Math.max(1, limit)) : 200,
    );
    return c.json(log);
  });
  return app;
}
