/** testbed.yaml: the shape of the papers' experiment (every field optional; defaults are the paper's 4 nodes). */
import { z } from 'zod';

export const testbedConfigSchema = z
  .object({
    nodes: z.number().int().min(2).max(12).default(4),
    /** Where the mesh sits; nodes are placed on a circle around it (tens of km, as the paper's §II.1). */
    center: z
      .object({ lat: z.number().min(-90).max(90), lon: z.number().min(-180).max(180) })
      .strict()
      .default({ lat: 37.45, lon: 127.05 }),
    radiusKm: z.number().positive().max(500).default(20),
    /** Explicit positions, by node name (n1, n2, ...), overriding the circle. */
    positions: z.record(z.string(), z.object({ lat: z.number(), lon: z.number() }).strict()).default({}),
    /** The radio links: capacity and random loss of every mesh link. */
    link: z
      .object({
        rateMbit: z.number().positive().max(10_000).default(20),
        lossPct: z.number().min(0).max(50).default(0.1),
        /** What the air adds each way, as a radio's latency (ms). */
        delayMs: z.number().min(0).max(1000).default(5),
      })
      .strict()
      .prefault({}),
    /** Extra links beyond the ring (n1-n2-…-nN-n1) and its chord n1-n3: pairs of node names. */
    extraLinks: z.array(z.tuple([z.string(), z.string()])).default([]),
    /** HTTP requests per second of each client (routine web). */
    rps: z.number().positive().max(200).default(3),
    /** The other services' traffic (docs/testbed.md, Services): C2, the sensor stream, bulk. */
    traffic: z
      .object({
        /** C2 messages per second from each node to the others, in turn (flash). */
        c2Rps: z.number().positive().max(200).default(2),
        /** Each node's sensor stream to the next node, kbit/s (immediate, UDP). */
        sensorKbit: z.number().int().min(8).max(50_000).default(2000),
        /**
         * A bulk TCP transfer across the first radio link, as fast as it goes: true from the
         * start; "off": declared, started by a scenario's `traffic: on`; false: none.
         */
        bulk: z.union([z.boolean(), z.literal('off')]).default(true),
      })
      .strict()
      .prefault({}),
    /** The QoS policy that serves the services (classes, rules, links auto, closed loop on). */
    qos: z.boolean().default(true),
    /**
     * Headquarters behind a data diode (seed 004): the tower forwards its flow records as
     * IPFIX over a strictly one-way link to a collector (nfcapd) in a network of its own.
     */
    hq: z
      .object({
        enabled: z.boolean().default(true),
        rateMbit: z.number().positive().max(10_000).default(10),
        /** Random loss on the one-way link; FEC is sized for it (at least 1 %). */
        lossPct: z.number().min(0).max(20).default(0.5),
      })
      .strict()
      .prefault({}),
    /** The dashboard/API on the host. */
    apiPort: z.number().int().min(1).max(65535).default(8443),
  })
  .strict();

export type TestbedConfig = z.infer<typeof testbedConfigSchema>;
