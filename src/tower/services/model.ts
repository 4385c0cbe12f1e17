/**
 * A service as the tower keeps it (docs/services.md): a name, where its instances run, a
 * precedence (the military levels, each mapped to a QoS class) and an objective. Declared in
 * tower.yaml `services:`, by `PUT /api/v1/services`, or by the nodes (a member's `services:`
 * in node.yaml, sent in their hello).
 */
import { z } from 'zod';

export const PRECEDENCES = ['flash', 'immediate', 'priority', 'routine'] as const;
export type Precedence = (typeof PRECEDENCES)[number];

const name = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "-", "." only');
const ipv4 = z
  .string()
  .regex(/^(\d{1,3})(\.\d{1,3}){3}$/, 'must be an IPv4 address like 10.77.1.10')
  .refine((a) => a.split('.').every((o) => Number(o) <= 255), 'each octet must be 0..255');

export const ServiceInstanceSpec = z
  .object({
    node: name,
    slice: z.string().max(64).optional(),
    member: z.string().max(64).optional(),
    /** the member's address: where the monitor sees the service's traffic */
    address: ipv4,
    /** 0: a client-only instance (it calls services, serves none) */
    port: z.number().int().min(0).max(65535),
    protocol: z.enum(['http', 'tcp', 'udp']).default('http'),
  })
  .strict();

export const ServiceObjectiveSpec = z
  .object({
    targetP95Ms: z.number().positive().max(600_000),
    /** the share of requests that may fail (4xx and 5xx) */
    errorBudgetPct: z.number().min(0).max(100),
  })
  .strict();

export const ServiceSpec = z
  .object({
    name,
    precedence: z.enum(PRECEDENCES).default('routine'),
    instances: z.array(ServiceInstanceSpec).max(256).default([]),
    objective: ServiceObjectiveSpec.optional(),
    /**
     * The QoS intent (docs/services.md): at least this many bit/s between any two of its
     * instances, in its precedence's class, on every link of the paths between them.
     */
    guaranteeBps: z.number().int().min(8000).max(100_000_000_000).optional(),
  })
  .strict();

export const ServiceSetSpec = z.array(ServiceSpec).max(1024);

export const HealthThresholdsSpec = z
  .object({
    /** error % above which a service is degraded */
    degradedAbovePct: z.number().min(0).max(100).default(0),
    /** error % at or above which it is failing */
    failingAtPct: z.number().min(0).max(100).default(10),
  })
  .strict();

export type ServiceInstanceSpec = z.infer<typeof ServiceInstanceSpec>;
export type ServiceSpec = z.infer<typeof ServiceSpec>;
export type HealthThresholds = z.infer<typeof HealthThresholdsSpec>;

export const DEFAULT_HEALTH: HealthThresholds = HealthThresholdsSpec.parse({});

/** The QoS class each precedence maps to (docs/qos.md): classes of these names in the policy. */
export const PRECEDENCE_CLASS: Record<Precedence, string> = {
  flash: 'flash',
  immediate: 'immediate',
  priority: 'priority',
  routine: 'routine',
};
