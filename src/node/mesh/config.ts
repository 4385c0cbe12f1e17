/**
 * The mesh section of node.yaml: how the node probes its radio links, when it calls one
 * degraded, where it reads its routes, and whether telemetry may go through a neighbour.
 * Which uplinks are radio links, and who is at their other end, is said on each uplink
 * (`uplinks[].mesh`).
 */
import { z } from 'zod';
import { ipv4Address } from '../../shared/config.js';

/** On an uplink: it is a radio link to `neighbour`, whose radio may speak DLEP. */
export const uplinkMeshSchema = z
  .object({
    /** The neighbour node's address on this link: the STAMP probes' target. */
    neighbour: ipv4Address,
    /** The radio's DLEP connection point; without it capacity is the uplink's rateMbit. */
    dlep: z
      .object({ address: ipv4Address, port: z.number().int().min(1).max(65535).default(854) })
      .strict()
      .optional(),
  })
  .strict();

export const meshSchema = z
  .object({
    probe: z
      .object({
        /** The STAMP reflector's port on every node (RFC 8762's is 862). */
        port: z.number().int().min(1).max(65535).default(862),
        ratePps: z.number().min(0.2).max(100).default(5),
        /** No answer this long: the probe is lost, and a link with no answer this long is down. */
        timeoutMs: z.number().int().min(100).max(60_000).default(1000),
        windowMs: z.number().int().min(1000).max(600_000).default(10_000),
        /** DSCP of the probes: CS6 (network control), so QoS can protect them. */
        dscp: z.number().int().min(0).max(63).default(48),
      })
      .strict()
      .default({ port: 862, ratePps: 5, timeoutMs: 1000, windowMs: 10_000, dscp: 48 }),
    /** Past any of these a link that is up is "degraded". */
    degraded: z
      .object({
        lossPct: z.number().min(0).max(100).default(5),
        rttMs: z.number().gt(0).default(500),
        /** Capacity below this share of the link's maximum. */
        capacityShare: z.number().min(0).max(1).default(0.5),
      })
      .strict()
      .default({ lossPct: 5, rttMs: 500, capacityShare: 0.5 }),
    /** How often the node reports its links (ms), and reads the kernel's routes while no babeld answers. */
    intervalMs: z.number().int().min(200).max(60_000).default(1000),
    /**
     * Telemetry through a neighbour when the management path is gone: the node offers its
     * neighbours a relay to its own tower address on its radio addresses, and falls back
     * to theirs (docs/mesh.md). Off by default.
     */
    relay: z
      .object({
        enabled: z.boolean().default(false),
        port: z.number().int().min(1).max(65535).default(7444),
        /** A batch unacknowledged this long means the path to the tower is gone. */
        ackTimeoutMs: z.number().int().min(500).max(60_000).default(3000),
      })
      .strict()
      .default({ enabled: false, port: 7444, ackTimeoutMs: 3000 }),
    /** Where the node reads its routes: babeld's local control socket, else the kernel's table. */
    routes: z
      .object({
        /** babeld's `local-path` (a unix socket) or `local-port` (TCP on ::1); read-only is enough. */
        babel: z
          .union([
            z.object({ path: z.string().startsWith('/', 'an absolute path') }).strict(),
            z.object({ port: z.number().int().min(1).max(65535) }).strict(),
          ])
          .optional(),
        /** A route report at least this often, changed or not (ms). */
        refreshMs: z.number().int().min(1000).max(600_000).default(10_000),
      })
      .strict()
      .default({ refreshMs: 10_000 }),
  })
  .strict();

export type MeshConfig = z.output<typeof meshSchema>;
export type UplinkMesh = z.output<typeof uplinkMeshSchema>;
