/**
 * `tacmesh node status`: every entity of the node and its health, from a deep look at the
 * kernel compared with the applied config (the plan's problems, grouped by entity), plus
 * which programs sit on the monitored ports.
 */
import { run } from '../../shared/exec.js';
import { requirePrograms } from '../../shared/programs.js';
import type { Desired } from './desired.js';
import { tcxPrograms } from './monitoring.js';
import { entityNames, monitorEntity, plan } from './plan.js';
import { observeNode } from './reconcile.js';

export interface EntityStatus {
  entity: string;
  ok: boolean;
  /** What is wrong (empty when ok) or, for monitors, what is attached. */
  detail: string;
}

/** Program id → name, of every program loaded (bpftool). */
async function programNames(): Promise<Map<number, string>> {
  const { stdout } = await run('bpftool', ['-j', 'prog', 'show']);
  return new Map(
    (JSON.parse(stdout || '[]') as { id: number; name?: string }[]).map((p) => [p.id, p.name ?? '']),
  );
}

export async function nodeStatus(desired: Desired): Promise<EntityStatus[]> {
  requirePrograms(['ip', 'tc', 'bpftool'], 'the node status');
  const observed = await observeNode(desired, true);
  const problems = new Map<string, string[]>();
  for (const a of plan({ desired, observed })) {
    const list = problems.get(a.entity) ?? [];
    if (!list.includes(a.problem)) list.push(a.problem);
    problems.set(a.entity, list);
  }
  const status: EntityStatus[] = entityNames(desired).map((entity) => {
    const p = problems.get(entity) ?? [];
    problems.delete(entity);
    return { entity, ok: p.length === 0, detail: p.join('; ') };
  });
  // Leftovers of an older config, and the like: entities the config does not name.
  for (const [entity, p] of problems) status.push({ entity, ok: false, detail: p.join('; ') });
  if (desired.monitored.length) {
    const names = await programNames();
    for (const s of desired.slices.filter((x) => x.monitoring)) {
      for (const m of s.members) {
        const progs = tcxPrograms(m.port, desired.netns);
        const on = (ids: number[]) => ids.map((id) => names.get(id) ?? `#${id}`);
        const ingress = on(progs?.ingress ?? []);
        const egress = on(progs?.egress ?? []);
        const ok = ingress.includes('flowmon_ingress') && egress.includes('flowmon_egress');
        status.push({
          entity: monitorEntity(desired, m.port),
          ok,
          detail: ok
            ? `flowmon on ${m.port}`
            : `flowmon not attached to ${m.port} (ingress: ${ingress.join(',') || 'none'}, egress: ${egress.join(',') || 'none'}); is an agent running (apply --watch)?`,
        });
      }
    }
  }
  return status;
}

export function formatStatus(status: EntityStatus[]): string {
  const width = Math.max(6, ...status.map((s) => s.entity.length));
  const lines = [`${'ENTITY'.padEnd(width)}  HEALTH    DETAIL`];
  for (const s of status)
    lines.push(`${s.entity.padEnd(width)}  ${(s.ok ? 'ok' : 'PROBLEM').padEnd(8)}  ${s.detail}`);
  const bad = status.filter((s) => !s.ok).length;
  lines.push(
    '',
    bad ? `${bad} of ${status.length} entities need attention` : `all ${status.length} entities healthy`,
  );
  return lines.join('\n');
}
