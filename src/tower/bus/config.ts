/**
 * tower.yaml `bus`: the NATS JetStream servers the tower puts node batches on (docs/bus.md).
 * Without it the tower stores batches itself, with no NATS at all.
 */
import { z } from 'zod';

const domainName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'must be a name of lower-case letters, digits and -, e.g. brigade1');

const natsUrl = z
  .string()
  .regex(/^(nats|tls):\/\/[^\s,/]+:\d{1,5}$/, 'must be nats://host:port (or tls://host:port)');

export const busSchema = z
  .object({
    /** One server, or several of a cluster: a list, or comma-separated. */
    url: z
      .union([z.string().min(1), z.array(natsUrl).min(1)])
      .transform((u) => (Array.isArray(u) ? u : u.split(',').map((s) => s.trim())))
      .pipe(z.array(natsUrl).min(1)),
    /** This echelon's name: the subjects `flows.<domain>.<node>` and the stream `FLOWS_<domain>`. */
    domain: domainName,
    /** Copies of the stream kept (1, or 3 on a cluster of three servers). */
    replicas: z.number().int().min(1).max(5).default(1),
    /** How long the stream keeps a batch, stored or not. */
    retentionDays: z.number().positive().default(7),
    /** The durable consumer that fills this tower's store; each tower on a bus needs its own. */
    consumer: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be letters, digits, _ and - only')
      .default('writer'),
    /** How long a node's batch waits for the bus's acknowledgement before the node is told to resend. */
    publishTimeoutMs: z.number().int().positive().default(5000),
    /**
     * A division (docs/bus.md, Echelons): its stream also sources the streams of these
     * brigades' domains, whose servers are leaf nodes of its own, and its writer stores their
     * records under node names qualified by brigade (`brigade1/alpha`).
     */
    echelon: z
      .object({
        brigades: z
          .array(domainName)
          .min(1, 'must name at least one brigade domain')
          .superRefine((list, ctx) => {
            const seen = new Set<string>();
            for (const [i, b] of list.entries()) {
              if (seen.has(b)) ctx.addIssue({ code: 'custom', path: [i], message: `${b} is listed twice` });
              seen.add(b);
            }
          }),
      })
      .strict()
      .optional(),
    /**
     * TLS to the servers, with this tower's certificate as the client's: `tls: {}` uses the
     * tower's PKI (pki.dir's CA, pki.name's certificate and key); each file may be given instead.
     */
    /**
     * A standby pair (docs/bus.md): towers on the same bus share a leader lease; only the
     * holder takes node streams. `holder`: this tower's name in it; a lease lapses `ttlMs`
     * after its holder last renewed it. `advertise`: the host:port nodes reach this tower's
     * control plane at (as in their tower.address), named to the nodes a standby refuses.
     */
    lease: z
      .object({
        holder: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be letters, digits, _ and - only'),
        ttlMs: z.number().int().min(300).default(3000),
        advertise: z
          .string()
          .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'must be host:port, e.g. 10.77.0.5:7443')
          .optional(),
      })
      .strict()
      .optional(),
    tls: z
      .object({
        ca: z.string().min(1).optional(),
        cert: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((bus, ctx) => {
    const own = bus.echelon?.brigades.indexOf(bus.domain) ?? -1;
    if (own >= 0)
      ctx.addIssue({
        code: 'custom',
        path: ['echelon', 'brigades', own],
        message: `${bus.domain} is this tower's own domain (bus.domain), not a brigade of it`,
      });
  });

export type BusConfig = z.infer<typeof busSchema>;
