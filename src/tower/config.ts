/** tower.yaml and site.yaml: what the tower listens on, where it keeps things, what it knows of places. */
import { z } from 'zod';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'must be host:port, e.g. 0.0.0.0:7443 or [::]:7443');

const cidr = z.string().regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, 'must be a CIDR prefix like 10.77.1.0/24');

export const towerConfigSchema = z
  .object({
    control: z.object({ listen: hostPort.default('0.0.0.0:7443') }).default({ listen: '0.0.0.0:7443' }),
    api: z.object({ listen: hostPort.default('127.0.0.1:8443') }).default({ listen: '127.0.0.1:8443' }),
    pki: z.object({
      dir: z.string().min(1),
      /** The tower's certificate is <dir>/<name>.crt, its key <dir>/<name>.key. */
      name: z.string().default('tower'),
    }),
    store: z
      .object({
        path: z.string().default('/var/lib/tacmesh/tower.duckdb'),
        retentionDays: z.number().positive().default(7),
        rollupRetentionDays: z.number().positive().default(90),
      })
      .default({ path: '/var/lib/tacmesh/tower.duckdb', retentionDays: 7, rollupRetentionDays: 90 }),
    tokens: z.string().min(1),
    site: z.string().optional(),
    influx: z.object({ url: z.string().url(), database: z.string().default('tacmesh') }).optional(),
    /**
     * Prometheus metrics (GET /metrics) on a listener of their own, unauthenticated: off
     * without this section, on loopback (127.0.0.1:9109) with `metrics: {}`.
     */
    metrics: z
      .object({ listen: hostPort.default('127.0.0.1:9109') })
      .strict()
      .optional(),
    /** When set, only these nodes may connect (besides holding a certificate of our CA). */
    nodes: z.array(z.string()).optional(),
  })
  .strict();

export type TowerConfig = z.infer<typeof towerConfigSchema>;

export const siteSchema = z
  .object({
    subnets: z.array(z.object({ cidr, node: z.string().min(1) }).strict()).default([]),
    places: z
      .array(
        z
          .object({
            cidr,
            label: z.string().optional(),
            lat: z.number().min(-90).max(90),
            lon: z.number().min(-180).max(180),
          })
          .strict(),
      )
      .default([]),
    mmdb: z.string().optional(),
  })
  .strict();

export type SiteConfig = z.infer<typeof siteSchema>;
