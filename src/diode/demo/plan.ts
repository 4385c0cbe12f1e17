/**
 * What `tacmesh diode demo` builds, computed before anything is made: the two sides'
 * addresses, the services that cross, where every file lives, and the sender's and
 * receiver's configs (send.yaml, recv.yaml) — auth on, FEC sized for the loss, an outbox
 * and an inbox, a TCP log stream and a UDP telemetry stream.
 */
import { join } from 'node:path';
import { repairsFor } from '../protocol/fec-sizing.js';

/** The link: 10.77.230.0/30, the sender's end .1, the receiver's .2. */
export const SEND_ADDR = '10.77.230.1';
export const RECV_ADDR = '10.77.230.2';
/**
 * The link's port; where the one-way proof listens (never a port of the diode's); the
 * services, on each side's loopback (the client's and the destination's port alike).
 */
export const PORTS = { link: 47000, probe: 47999, log: 1514, udp: 5140 } as const;
export interface LinkSetting {
  rateMbit: number;
  lossPct: number;
  /** Packets lost in a row per loss burst (1: independent loss). */
  burst: number;
}

export interface FecSetting {
  lossPct: number;
  burst: number;
}

/**
 * The sender paces a little below the link (whose token bucket then never overflows); each
 * file and TCP session goes twice (what a receiver restart or a failed FEC block cut comes
 * whole from the second round); FEC is sized for at least 1 % loss (turning the loss up a
 * little live is covered).
 */
export const PACE_SHARE = 0.98;
export const ROUNDS = 2;
export const MIN_FEC_LOSS_PCT = 1;

export interface DemoOptions {
  link: LinkSetting;
  /** What FEC is sized for; by default the link's loss and burst, at least MIN_FEC_LOSS_PCT. */
  fec?: FecSetting;
  /** Lines per second of the TCP log stream; datagrams per second of the UDP stream. */
  logLinesPerS?: number;
  udpPerS?: number;
}

export interface DemoPaths {
  dir: string;
  logs: string;
  outbox: string;
  inbox: string;
  keys: string;
  sendConfig: string;
  recvConfig: string;
  sendStats: string;
  recvStats: string;
  sendAudit: string;
  recvAudit: string;
  /** The traffic tools' counters, by tool name. */
  tools: { logSource: string; logSink: string; udpSource: string; udpSink: string };
}

export function demoPaths(dir: string): DemoPaths {
  return {
    dir,
    logs: join(dir, 'logs'),
    outbox: join(dir, 'outbox'),
    inbox: join(dir, 'inbox'),
    keys: join(dir, 'keys.txt'),
    sendConfig: join(dir, 'send.yaml'),
    recvConfig: join(dir, 'recv.yaml'),
    sendStats: join(dir, 'send-stats.json'),
    recvStats: join(dir, 'recv-stats.json'),
    sendAudit: join(dir, 'send-audit.jsonl'),
    recvAudit: join(dir, 'recv-audit.jsonl'),
    tools: {
      logSource: join(dir, 'log-source.json'),
      logSink: join(dir, 'log-sink.json'),
      udpSource: join(dir, 'udp-source.json'),
      udpSink: join(dir, 'udp-sink.json'),
    },
  };
}

export function fecFor(options: DemoOptions): FecSetting {
  return (
    options.fec ?? {
      lossPct: Math.max(MIN_FEC_LOSS_PCT, options.link.lossPct),
      burst: options.link.burst,
    }
  );
}

/** Repairs per block at a few block lengths, as the sender will size them. */
export function fecTable(fec: FecSetting): { k: number; r: number }[] {
  const sizing = { loss: fec.lossPct / 100, burst: fec.burst, margin: 0.1, failure: 1e-5 };
  return [64, 256, 1024, 2048].map((k) => ({ k, r: repairsFor(k, sizing) }));
}

/** send.yaml as written (check it with sendSchema). */
export function sendConfig(paths: DemoPaths, link: LinkSetting, fec: FecSetting): Record<string, unknown> {
  return {
    link: {
      to: `${RECV_ADDR}:${PORTS.link}`,
      from: SEND_ADDR,
      rateMbit: Math.round(link.rateMbit * PACE_SHARE * 1000) / 1000,
    },
    tcp: [
      {
        name: 'syslog',
        listen: `127.0.0.1:${PORTS.log}`,
        destination: `127.0.0.1:${PORTS.log}`,
        rounds: ROUNDS,
      },
    ],
    udp: [{ name: 'telemetry', listen: `127.0.0.1:${PORTS.udp}`, destination: `127.0.0.1:${PORTS.udp}` }],
    store: { dir: join(paths.dir, 'send-store') },
    auth: { keyFile: paths.keys },
    fec: { expectedLoss: fec.lossPct / 100, burstFrames: fec.burst },
    files: { outbox: paths.outbox, rounds: ROUNDS },
    audit: { file: paths.sendAudit },
    stats: { file: paths.sendStats, everyMs: 500 },
  };
}

/** recv.yaml as written (check it with recvSchema). */
export function recvConfig(paths: DemoPaths): Record<string, unknown> {
  return {
    link: { listen: `${RECV_ADDR}:${PORTS.link}` },
    auth: { keyFile: paths.keys },
    tcp: {
      allow: [`127.0.0.1:${PORTS.log}`, `127.0.0.1:${PORTS.udp}`],
      // Sessions held on disk: a receiver killed and restarted delivers what it held complete.
      store: {},
    },
    stateDir: join(paths.dir, 'recv-state'),
    files: { inbox: paths.inbox, incompleteAfterMs: 60_000 },
    audit: { file: paths.recvAudit },
    stats: { file: paths.recvStats, everyMs: 500 },
  };
}
