/** tower.yaml and site.yaml: what the tower listens on, where it keeps things, what it knows of places. */
import { z } from 'zod';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'must be host:port, e.g. 0.0.0.0:7443 or [::]:7443');

import { busSchema } from './bus/config.js';
import { HealthThresholdsSpec, ServiceSetSpec } from './services/model.js';

const cidr = z.string().regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, 'must be a CIDR prefix like 10.77.1.0/24');

const limitsSchema = z
  .object({
    /** Subnets (its own and its slices') one hello may register; more: the hello is refused. */
    subnetsPerNode: z.number().int().positive().default(1024),
    /** Gaps in a node's stored seqs kept track of; past it the oldest are closed. */
    seqGapsPerNode: z.number().int().positive().default(10_000),
    /** Agent events, status and QoS reports per node per second (bursts of 10 s); more are dropped. */
    messagesPerSecond: z.number().positive().default(20),
    /** Concurrent control-plane streams per node certificate; more are refused. */
    streamsPerNode: z.number().int().positive().default(4),
    /** Largest clock difference a node's record times are trusted with, ahead of the tower's. */
    clockSkewMinutes: z.number().nonnegative().default(60),
    /** Longest time window one API query may cover. */
    queryWindowDays: z.number().positive().default(31),
    /** Failed token checks per client address per minute before it must wait. */
    loginFailures: z.number().int().positive().default(5),
  })
  .strict();

export const towerConfigSchema = z
  .object({
    control: z.object({ listen: hostPort.default('0.0.0.0:7443') }).default({ listen: '0.0.0.0:7443' }),
    api: z.object({ listen: hostPort.default('127.0.0.1:8443') }).default({ listen: '127.0.0.1:8443' }),
    pki: z.object({
      dir: z.string().min(1),
      /** The tower's certificate is <dir>/<name>.crt, its key <dir>/<name>.key. */
      name: z.string().default('tower'),
      /**
       * The deny-list of certificate serials (`tacmesh pki revoke`), re-read when it changes;
       * default <dir>/revoked.txt (no file: nothing revoked).
       */
      revoked: z.string().min(1).optional(),
    }),
    store: z
      .object({
        path: z.string().default('/var/lib/tacmesh/tower.duckdb'),
        retentionDays: z.number().positive().default(7),
        rollupRetentionDays: z.number().positive().default(90),
        /** Whole days past retentionDays kept this much longer in Parquet files (store/archive.ts); none or 0: none. */
        archiveDays: z.number().int().nonnegative().optional(),
      })
      .default({ path: '/var/lib/tacmesh/tower.duckdb', retentionDays: 7, rollupRetentionDays: 90 }),
    tokens: z.string().min(1),
    site: z.string().optional(),
    influx: z.object({ url: z.string().url(), database: z.string().default('tacmesh') }).optional(),
    /** NATS JetStream between the control plane and the store (docs/bus.md); none: no NATS. */
    bus: busSchema.optional(),
    /**
     * The tower's flow records, one way to headquarters (docs/diode.md "Mesh telemetry to
     * headquarters"): as IPFIX over UDP to `ipfix` (a diode sender's UDP service, or any
     * collector), and the diode sender's metrics read for the link's health as it knows it.
     */
    forward: z
      .object({
        /** What the records go to, for the dashboard. */
        label: z.string().min(1).default('headquarters'),
        ipfix: z
          .string()
          .regex(/^udp:\/\/[^:/\s]+:\d{1,5}$/, 'must be udp://host:port, e.g. udp://10.77.97.2:4739'),
        /** The diode sender's Prometheus metrics (its `metrics.listen`), e.g. http://10.77.97.2:9464/metrics. */
        diodeMetrics: z.string().url().optional(),
      })
      .strict()
      .optional(),
    /**
     * Prometheus metrics (GET /metrics) on a listener of their own, unauthenticated: off
     * without this section, on loopback (127.0.0.1:9109) with `metrics: {}`.
     */
    metrics: z
      .object({ listen: hostPort.default('127.0.0.1:9109') })
      .strict()
      .optional(),
    /**
     * When set, only these nodes may connect (besides holding a certificate of our CA). A node
     * given with `subnets` may register only subnets inside them.
     */
    nodes: z
      .array(
        z.union([
          z.string().min(1),
          z.object({ name: z.string().min(1), subnets: z.array(cidr).optional() }).strict(),
        ]),
      )
      .optional(),
    /** Services the tower declares (docs/services.md); nodes may declare more in their hellos. */
    services: ServiceSetSpec.optional(),
    /** Error % at which a service is degraded and failing (default: above 0 %, at 10 %). */
    serviceHealth: HealthThresholdsSpec.optional(),
    /** What one node (or one API client) may cost the tower. */
    limits: limitsSchema.default(() => limitsSchema.parse({})),
  })
  .strict();

export type TowerLimits = z.infer<typeof limitsSchema>;

/** As parsed; built in code (tests), `limits` may be left out for the defaults. */
export type TowerConfig = Omit<z.infer<typeof towerConfigSchema>, 'limits'> & { limits?: TowerLimits };

export const DEFAULT_LIMITS: TowerLimits = limitsSchema.parse({});

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
