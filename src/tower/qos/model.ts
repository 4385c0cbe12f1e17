/**
 * The operator's QoS policy, as the tower keeps it and the API takes it: service classes
 * (priority, guaranteed and maximum rate, the DSCP they mark), rules that map traffic to a
 * class (prefixes, protocol, ports, incoming DSCP, HTTP hosts as the monitor saw them;
 * optionally scoped to one node or one link), the links the classes are built on (at a
 * typed rate, or `auto`: what the node's mesh reports measure), and the closed loop's
 * settings. Rates are bits per second.
 */
import { z } from 'zod';

const name = z
  .string()
  .min(1)
  .max(32)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, "_", "-", "." only');
const rate = z.number().int().min(0).max(100_000_000_000);
const port = z.number().int().min(0).max(65535);

export const QosClassSpec = z
  .object({
    name,
    /** 0 is served first (HTB prio 0..7) */
    priority: z.number().int().min(0).max(7),
    guaranteedBps: rate,
    /** 0: the link's rate */
    ceilingBps: rate.default(0),
    dscp: z.number().int().min(0).max(63),
  })
  .strict();

export const QosRuleSpec = z
  .object({
    name,
    class: z.string(),
    srcPrefixes: z.array(z.string()).default([]),
    dstPrefixes: z.array(z.string()).default([]),
    /** Hosts of HTTP requests the monitor saw; their server addresses become destination prefixes. */
    httpHosts: z.array(z.string().min(1).max(253)).default([]),
    /** IP protocol number; 0: any */
    protocol: z.number().int().min(0).max(255).default(0),
    srcPorts: z.tuple([port, port]).optional(),
    dstPorts: z.tuple([port, port]).optional(),
    /** Match packets arriving with this DSCP only. */
    matchDscp: z.number().int().min(0).max(63).optional(),
    police: z
      .object({
        bps: rate.min(8000),
        /** above the rate: drop, or re-mark to `dscp` */
        action: z.enum(['drop', 'remark']).default('drop'),
        dscp: z.number().int().min(0).max(63).default(0),
      })
      .strict()
      .optional(),
    /** Where the rule applies: every node (default), one node, or one link of a node. */
    scope: z.object({ node: z.string().optional(), iface: z.string().optional() }).strict().optional(),
  })
  .strict();

export const QosLinkSpec = z
  .object({
    node: z.string().min(1),
    iface: z.string().min(1).max(15),
    /**
     * `auto`: a radio link the node measures (docs/mesh.md). The classes are built at the
     * radio's maximum rate, and the closed loop works from the newest mesh report's
     * capacity (DLEP's current data rate, else the uplink's configured rate) and load.
     */
    rateBps: z.union([rate.min(8000), z.literal('auto')]),
  })
  .strict();

export const QosAutoSpec = z
  .object({
    enabled: z.boolean().default(false),
    /** a link whose utilisation reaches this share of its rate is congested */
    congestedAt: z.number().min(0.1).max(1).default(0.9),
    /** ... and no longer congested below this share (hysteresis) */
    clearAt: z.number().min(0.05).max(1).default(0.6),
    /** how long either condition must hold before the loop acts */
    holdMs: z.number().int().min(0).max(600_000).default(2000),
  })
  .strict();

export const QosPolicySpec = z
  .object({
    classes: z.array(QosClassSpec).default([]),
    rules: z.array(QosRuleSpec).default([]),
    links: z.array(QosLinkSpec).default([]),
    auto: QosAutoSpec.default({ enabled: false, congestedAt: 0.9, clearAt: 0.6, holdMs: 2000 }),
  })
  .strict();

export type QosClassSpec = z.infer<typeof QosClassSpec>;
export type QosRuleSpec = z.infer<typeof QosRuleSpec>;
export type QosLinkSpec = z.infer<typeof QosLinkSpec>;
export type QosAutoSpec = z.infer<typeof QosAutoSpec>;
export type QosPolicySpec = z.infer<typeof QosPolicySpec>;

export const EMPTY_POLICY: QosPolicySpec = QosPolicySpec.parse({});
