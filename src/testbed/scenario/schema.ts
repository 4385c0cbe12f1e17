/**
 * A scenario file (`tacmesh demo --scenario FILE.yaml`, docs/testbed.md): timed steps on the
 * running testbed, each at so many seconds after the demo is up, and when to end with the
 * report.
 */
import { z } from 'zod';

const node = z.string().regex(/^n\d{1,2}$/, 'a node of the testbed, like n2');
const at = z.number().min(0).max(86_400);

export const ScenarioStep = z.union(
  [
    z
      .object({
        at,
        link: z.literal('set'),
        a: node,
        b: node,
        rateMbit: z.number().positive().max(10_000).optional(),
        lossPct: z.number().min(0).max(100).optional(),
      })
      .strict()
      .refine(
        (s) => s.rateMbit !== undefined || s.lossPct !== undefined,
        'link set needs rateMbit and/or lossPct',
      ),
    z.object({ at, link: z.enum(['cut', 'restore']), a: node, b: node }).strict(),
    z.object({ at, mgmt: z.enum(['cut', 'restore']), node }).strict(),
    /** Every link back to its configured rate and loss, every cut link and management link restored. */
    z.object({ at, restore: z.literal('all') }).strict(),
    z
      .object({ at, traffic: z.enum(['on', 'off']), service: z.enum(['c2', 'sensor', 'web', 'bulk']) })
      .strict(),
  ],
  {
    error: (issue) =>
      issue.code === 'invalid_union' && issue.errors.length > 1
        ? 'a step is one of {at, link: set, a, b, rateMbit?, lossPct?}, {at, link: cut|restore, a, b}, {at, mgmt: cut|restore, node}, {at, restore: all}, {at, traffic: on|off, service: c2|sensor|web|bulk}'
        : undefined,
  },
);

export const ScenarioSpec = z
  .object({
    name: z.string().min(1).max(64).default('scenario'),
    steps: z.array(ScenarioStep).max(200),
    /** Seconds after the start: the report, and the demo ends. Without it: at Ctrl-C. */
    end: at.optional(),
  })
  .strict()
  .refine((s) => s.end === undefined || s.steps.every((x) => x.at <= s.end!), {
    message: 'every step must come before end',
    path: ['end'],
  });

export type ScenarioStep = z.infer<typeof ScenarioStep>;
export type ScenarioSpec = z.infer<typeof ScenarioSpec>;
