/**
 * The diode's configuration files, send.yaml and recv.yaml (YAML, checked with zod). Every
 * error names the file, the field and what is wrong with it. docs/diode.md has the reference
 * and examples/diode/ a working pair.
 */
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { DEFAULT_COPY_POLICY } from './send/copies.js';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/, 'expected host:port, e.g. 10.77.200.2:47000')
  .transform((s, ctx) => {
    const i = s.lastIndexOf(':');
    const host = s.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(s.slice(i + 1));
    if (port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `port ${port} is out of range 1-65535` });
      return z.NEVER;
    }
    return { host, port };
  });

/** An integer in [min, max], `def` when not given. */
const count = (min: number, max: number, def: number) => z.number().int().min(min).max(max).default(def);

const ipAddress = z.string().refine((s) => isIP(s) !== 0, 'expected an IP address');

const copySteps = z.array(
  z.object({ freeAtLeast: z.number().min(0).max(1), copies: z.number().int().min(0).max(8) }).strict(),
);

const importance = z.enum(['high', 'low']);

const metricsSchema = () =>
  z
    .object({
      /** Prometheus metrics over HTTP (GET /metrics) on this address:port; off if not set. */
      listen: hostPort.optional(),
    })
    .strict()
    .prefault({});

const auditSchema = () =>
  z
    .object({
      /** JSON lines, one per session and file event; off if not set. */
      file: z.string().optional(),
    })
    .strict()
    .prefault({});

const service = (defaultImportance: 'high' | 'low') =>
  z
    .object({
      name: z.string().min(1),
      listen: hostPort,
      destination: hostPort.refine((d) => isIP(d.host) !== 0, {
        message: 'the destination must be an IP address (the receiver resolves no names)',
      }),
      importance: importance.default(defaultImportance),
    })
    .strict();

/**
 * A TCP service: a session is accepted once its client closed cleanly and the store holds it;
 * the first round goes live, the carousel adds rounds from the store (session-rounds.ts).
 */
const tcpService = service('high')
  .extend({
    /** Send each accepted session this many rounds in all (the live one included)... */
    rounds: z.number().int().min(1).max(1000).default(1),
    /** ...or again and again until this long after it opened (overrides rounds). */
    durationS: z.number().positive().optional(),
  })
  .strict();

export const sendSchema = z
  .object({
    link: z
      .object({
        /** The receiver's address and port on the one-way link. */
        to: hostPort,
        /** Local address to send from (optional). */
        from: ipAddress.optional(),
        /** Pacing rate in Mbit/s, counted on the wire (IP, UDP and Ethernet headers included). */
        rateMbit: z.number().positive().max(100_000),
        /** Largest UDP payload: 1472 for a 1500-byte MTU. */
        datagramBytes: z.number().int().min(128).max(65507).default(1472),
        /**
         * Most ms of link time the pacer catches up on after a late timer (a burst at line
         * rate). Unset: 10 ms, but at most 256 KiB. Node's timers are late by a few ms
         * whenever the event loop is busy, and link time not caught up is lost (2 ms cost ~4 %
         * of a 100 Mbit/s link here); at 1 Gbit/s a 10 ms burst (1.25 MB) cost 25 % instead.
         */
        burstMs: z.number().min(0.1).max(100).optional(),
        /**
         * A copy of the receiver's calibration.json (`tacmesh diode calibrate`): the sender warns
         * at start when rateMbit is above what that calibration sustained.
         */
        calibration: z.string().optional(),
        /** The send buffer the copy policy watches, in bytes. */
        bufferBytes: z
          .number()
          .int()
          .min(65536)
          .default(4 * 1024 * 1024),
      })
      .strict(),
    copies: z
      .object({
        everyMs: z.number().int().min(1).max(1000).default(10),
        spreadMs: z.number().min(0).max(1000).default(5),
        high: copySteps.default(DEFAULT_COPY_POLICY.high),
        low: copySteps.default(DEFAULT_COPY_POLICY.low),
      })
      .strict()
      .prefault({}),
    tcp: z.array(tcpService).default([]),
    udp: z.array(service('low')).default([]),
    throughput: z
      .array(
        z
          .object({
            match: z
              .object({
                service: z.string().optional(),
                srcIp: ipAddress.optional(),
                srcPort: z.number().int().min(1).max(65535).optional(),
                dstIp: ipAddress.optional(),
                dstPort: z.number().int().min(1).max(65535).optional(),
              })
              .strict(),
            mbit: z.number().positive(),
          })
          .strict(),
      )
      .default([]),
    store: z
      .object({
        enabled: z.boolean().default(true),
        dir: z.string().default(join(tmpdir(), 'tacmesh-diode')),
      })
      .strict()
      .prefault({}),
    heartbeat: z
      .object({ everyMs: z.number().int().min(100).max(60_000).default(1000) })
      .strict()
      .prefault({}),
    /** Frames signed with a pre-shared key (auth.ts). */
    auth: z
      .object({
        keyFile: z.string(),
        /** Sign with this key id; by default the highest id in the file. */
        keyId: z.number().int().min(1).max(65535).optional(),
      })
      .strict()
      .optional(),
    /** FEC over blocks of frames (fec.ts, fec-code.ts, fec-sizing.ts). */
    fec: z
      .object({
        enabled: z.boolean().default(true),
        /** raptorq, ldpc (cheap, for low loss), or auto: ldpc up to 2 % loss with no bursts, raptorq beyond. */
        code: z.enum(['auto', 'raptorq', 'ldpc']).default('auto'),
        /** The loss the link is expected to have, 0..0.5. */
        expectedLoss: z.number().min(0).max(0.5),
        /** Mean length of a loss burst in datagrams (1 = independent loss). */
        burstFrames: z.number().min(1).max(1000).default(1),
        /** Plan for this much more loss than expected (0.1 = 10 % more). */
        margin: z.number().min(0).max(10).default(0.1),
        /** Largest acceptable probability that a block fails at the expected loss. */
        failure: z.number().gt(0).lt(0.5).default(1e-5),
        blockFrames: z.number().int().min(1).max(4096).default(2048),
        /** A block closes this long after its first frame even if not full. */
        maxDelayMs: z.number().int().min(1).max(10_000).default(200),
      })
      .strict()
      .optional(),
    /** Files: `send-file` and the outbox (files.ts, outbox.ts), repeated by the carousel. */
    files: z
      .object({
        /** A directory watched for files to send; off if not set. */
        outbox: z.string().optional(),
        /** Repeat each file this many rounds... */
        rounds: z.number().int().min(1).max(1000).default(1),
        /** ...or for this long after its first round started (overrides rounds). */
        durationS: z.number().positive().optional(),
        /** A manifest frame every this many chunks, for receivers that start mid-round. */
        manifestEvery: z.number().int().min(16).default(512),
      })
      .strict()
      .prefault({}),
    metrics: metricsSchema(),
    audit: auditSchema(),
    stats: statsSchema(),
  })
  .strict()
  .refine((c) => c.tcp.length + c.udp.length > 0 || c.files.outbox !== undefined, {
    message: 'configure at least one tcp or udp service, or files.outbox',
  })
  .refine((c) => c.store.enabled || c.tcp.every((s) => s.rounds === 1 && s.durationS === undefined), {
    message: 'a tcp service with rounds or durationS needs store.enabled: the rounds come from the store',
  });

export const recvSchema = z
  .object({
    link: z
      .object({
        /** Address and port to receive the link on. */
        listen: hostPort,
        /** UDP receive buffer; the first cause of loss on a real diode when too small. */
        receiveBufferBytes: z
          .number()
          .int()
          .min(65536)
          .default(32 * 1024 * 1024),
        /** Datagrams longer than this are dropped as oversized. */
        maxDatagramBytes: z.number().int().min(128).max(65507).default(9000),
        /**
         * The longest pause of the link reader the receive buffer must ride out at the sender's
         * rate (from its heartbeats): the buffer grows to that much of the link, if larger.
         */
        longestPauseMs: z.number().int().min(1).max(10_000).default(200),
        /**
         * Datagrams read but not yet processed, at most (a busy main thread: a collection, a
         * decode, a slow disk); beyond, the reader drops them (counted: the receiver is overloaded).
         */
        queueBytes: z
          .number()
          .int()
          .min(1 << 20)
          .default(256 * 1024 * 1024),
      })
      .strict(),
    /** window: the O(1) sequence window (default); adjacent: the paper's Algorithm 1, for comparison. */
    dedup: z.enum(['window', 'adjacent']).default('window'),
    windowFrames: z
      .number()
      .int()
      .min(1024)
      .max(1 << 24)
      .default(1 << 17),
    tcp: z
      .object({
        /** A missing frame not repaired by a copy within this time aborts its session. */
        gapTimeoutMs: z.number().int().min(50).default(2000),
        /** Frames a session may hold out of order before later ones are dropped as out of window. */
        maxReorderFrames: z.number().int().min(16).default(16384),
        /** Bytes waiting for a slow destination before the session is aborted. */
        maxBufferBytes: z
          .number()
          .int()
          .min(65536)
          .default(64 * 1024 * 1024),
        connectTimeoutMs: z.number().int().min(100).default(5000),
        /**
         * The only destinations TCP sessions and UDP datagrams may reach; others are refused.
         * Required (it may be empty) unless `insecure: true`.
         */
        allow: z.array(hostPort).optional(),
        /** Sessions held at once (each may buffer up to maxBufferBytes); more are refused. */
        maxSessions: count(1, 1_000_000, 1024),
        /**
         * Hold each session on disk until delivered (tcp-spool.ts): a receiver killed and
         * restarted delivers what it held complete; a destination down or slow is retried.
         */
        store: z
          .object({
            /** Default <stateDir>/tcp-spool. */
            dir: z.string().optional(),
            /** A failed delivery of a session held complete is tried again after this long. */
            retryMs: z.number().int().min(100).default(2000),
          })
          .strict()
          .optional(),
        /** Sessions delivered are remembered this long, so later rounds of them are not delivered again. */
        rememberDeliveredS: z
          .number()
          .int()
          .min(60)
          .default(7 * 86_400),
      })
      .strict()
      .prefault({}),
    heartbeat: z
      .object({
        /** The link counts as down after this long without a heartbeat. */
        timeoutMs: z.number().int().min(100).default(3000),
        /** Incomplete sessions are aborted after the link has been down this long. */
        abortAfterMs: z.number().int().min(100).default(10_000),
      })
      .strict()
      .prefault({}),
    /** Only frames signed with a key of this file are accepted (auth.ts). Required unless `insecure: true`. */
    auth: z.object({ keyFile: z.string() }).strict().optional(),
    /**
     * Run without auth or without tcp.allow: anyone who can send a datagram to the link port
     * may then forge sessions to any address. Logged as a warning at every start.
     */
    insecure: z.boolean().default(false),
    /** Where the receiver keeps its state (the newest epoch seen); 0700, owned by the diode's user. */
    stateDir: z.string().default(join(tmpdir(), 'tacmesh-diode-recv')),
    fec: z
      .object({
        /** An FEC block is given up this long after its last symbol. */
        holdMs: z.number().int().min(50).default(1000),
      })
      .strict()
      .prefault({}),
    /** Files (inbox.ts): off unless `inbox` is set. */
    files: z
      .object({
        inbox: z.string().optional(),
        /** Temporary files, quarantine and state; on the inbox's filesystem. Default <inbox>/.tacmesh. */
        spool: z.string().optional(),
        /** An incomplete file not heard of for this long goes to quarantine. */
        incompleteAfterMs: z.number().int().min(1000).default(120_000),
        maxFileBytes: z
          .number()
          .int()
          .min(1)
          .default(2 ** 40),
        reserveBytes: z
          .number()
          .int()
          .min(0)
          .default(256 * 1024),
        persistEveryMs: z.number().int().min(100).default(1000),
        /** Files received at once; a manifest beyond this is ignored (audited). */
        maxIncomingFiles: count(1, 10_000, 16),
        /** Chunks of one file (its bitmap is chunks / 8 bytes in memory); more is ignored. */
        maxChunks: count(1, 2 ** 32, 2 ** 28),
        /** A file seen to its end is remembered (not received again from a later round) this long. */
        rememberDoneS: count(60, 3650 * 86_400, 7 * 86_400),
      })
      .strict()
      .prefault({}),
    metrics: metricsSchema(),
    audit: auditSchema(),
    stats: statsSchema(),
  })
  .strict()
  .refine((c) => c.insecure || (c.auth !== undefined && c.tcp.allow !== undefined), {
    message:
      'the receiver fails closed: give auth (a key file) and tcp.allow (the destinations sessions ' +
      'and datagrams may reach; [] for none), or set insecure: true to run open',
  });

function statsSchema() {
  return z
    .object({
      /** A JSON file rewritten with the counters every `everyMs`. */
      file: z.string().optional(),
      everyMs: z.number().int().min(100).default(1000),
    })
    .strict()
    .prefault({});
}

export type SendConfig = z.infer<typeof sendSchema>;
export type RecvConfig = z.infer<typeof recvSchema>;

export { ConfigError, loadConfig, parseConfig } from '../shared/config.js';
