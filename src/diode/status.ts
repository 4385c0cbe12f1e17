/**
 * `tacmesh diode status` and `send-file`'s progress bar: what either side is doing, read from
 * what it leaves on disk — the stats file (live counters and the spool's progress), the
 * spool and quarantine directories, and the audit log. No port, no return path needed.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readAudit } from './audit.js';
import { CALIBRATION_FILE, calibrationWarning, readCalibration } from './calibration-record.js';
import type { RecvConfig, SendConfig } from './config.js';
import { receiverSpoolDir } from './receive/tcp-spool.js';
import type { FileProgress } from './send/files.js';

// biome-ignore lint/suspicious/noExplicitAny: the stats file is JSON written by the other process
type Json = any;

export function readStats(file: string | undefined): { stats: Json; ageMs: number } | undefined {
  if (!file) return undefined;
  try {
    return { stats: JSON.parse(readFileSync(file, 'utf8')), ageMs: Date.now() - statSync(file).mtimeMs };
  } catch {
    return undefined;
  }
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

export function humanRate(bytesPerSecond: number): string {
  return `${((bytesPerSecond * 8) / 1e6).toFixed(1)} Mbit/s`;
}

/** One line of progress: name, bar, percent, rate, ETA. */
export function progressLine(p: FileProgress, width = 30): string {
  const frac = p.size > 0 ? Math.min(1, p.roundBytes / p.size) : 1;
  const filled = Math.round(frac * width);
  const eta = p.rate > 0 ? Math.max(0, (p.size - p.roundBytes) / p.rate) : Number.NaN;
  const etaText = Number.isFinite(eta)
    ? `ETA ${Math.floor(eta / 60)}:${String(Math.round(eta % 60)).padStart(2, '0')}`
    : 'ETA --:--';
  return `${p.name.slice(0, 24).padEnd(24)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(1).padStart(5)} %  ${humanRate(p.rate).padStart(13)}  ${etaText}  round ${p.round}`;
}

/** Subdirectories of `dir` that hold `marker`: sessions a spool holds, running or not. */
function spooled(dir: string, marker: string): number {
  if (!existsSync(dir)) return 0;
  return readdirSync(dir).filter((e) => existsSync(join(dir, e, marker))).length;
}

function auditEvents(file: string | undefined, events: string[]): Json[] {
  if (!file || !existsSync(file)) return [];
  return readAudit(readFileSync(file, 'utf8')).filter((e) => events.includes(e.event));
}

export function senderStatus(config: SendConfig): { text: string; json: Json } {
  const live = readStats(config.stats.file);
  const spoolDir = join(config.store.dir, 'files');
  const queued = existsSync(spoolDir) ? readdirSync(spoolDir).filter((e) => !e.startsWith('.')) : [];
  const progress: FileProgress[] = live?.stats.files?.spool ?? [];
  const sent = auditEvents(config.audit.file, ['file-sent']);
  const refused = auditEvents(config.audit.file, ['file-refused']);
  const sessionsRefused = auditEvents(config.audit.file, ['session-refused']);
  const sessionsStored = spooled(join(config.store.dir, 'sessions'), 'session.json');
  const lines = [
    `sender: ${live ? `running (stats ${Math.round(live.ageMs / 1000)} s old), epoch ${live.stats.epoch}` : 'no stats file (not running, or stats.file not set)'}`,
  ];
  if (live) {
    const l = live.stats.link;
    lines.push(
      `link: ${l.frames} frames, ${l.copiesSent} copies, ${l.repairFrames} repairs${l.fec ? ` (FEC overhead ${(l.fec.overhead * 100).toFixed(1)} %)` : ''}`,
    );
    const t = live.stats.tcp;
    lines.push(
      `tcp: ${t.opened ?? 0} sessions opened, ${t.accepted ?? 0} accepted, ${t.aborted ?? 0} aborted by the client, ${t.refused ?? 0} refused; ` +
        `${t.rounds ?? 0} rounds sent from the spool, ${t.replayed ?? 0} sessions replayed after a restart, ${t.sent ?? 0} sent in full`,
    );
  }
  if (config.link.calibration)
    lines.push(
      `calibration: ${calibrationWarning(config.link.rateMbit, config.link.calibration) ?? `link.rateMbit ${config.link.rateMbit} is within what the last calibration sustained (${config.link.calibration})`}`,
    );
  lines.push(
    `tcp sessions in the spool: ${sessionsStored}${live ? ` (${mb(live.stats.tcp.spoolBytes ?? 0)})` : ''}`,
  );
  if (sessionsRefused.length) {
    lines.push(`tcp sessions refused: ${sessionsRefused.length}`);
    for (const e of sessionsRefused.slice(-20))
      lines.push(`  ${e.time}  ${e.service}  ${e.srcIp}:${e.srcPort}  ${e.error}`);
  }
  lines.push(`files queued or sending: ${queued.length}`);
  for (const p of progress) lines.push(`  ${progressLine(p)}`);
  lines.push(`files sent: ${sent.length}`);
  for (const e of sent.slice(-20))
    lines.push(`  ${e.time}  ${e.name}  ${mb(e.size)}  ${e.sha256}  ${e.rounds} round(s)`);
  if (refused.length) {
    lines.push(`files refused: ${refused.length}`);
    for (const e of refused.slice(-20)) lines.push(`  ${e.time}  ${e.name}  ${e.error}`);
  }
  return {
    text: lines.join('\n'),
    json: {
      role: 'sender',
      running: !!live,
      stats: live?.stats ?? null,
      queued: queued.length,
      sessionsStored,
      sessionsRefused,
      progress,
      sent,
      refused,
    },
  };
}

/** Whether the receiver keeps up, and how full its buffers came (absent from stats of older receivers). */
function overloadLine(link: Json): string {
  const o = link.overload;
  const r = link.reader;
  if (!o || !r) return 'keeping up: not reported';
  const pct = (a: number, b: number) => (b > 0 ? `${Math.round((100 * a) / b)} %` : '-');
  const buffers = `socket buffer peak ${pct(r.socketPeakBytes, link.receiveBuffer?.effective ?? 0)}, queue peak ${pct(r.queuePeakBytes, r.queueBytes)}`;
  const drops = `${o.kernelDrops} datagrams dropped by the kernel, ${o.queueDrops} not processed in time`;
  if (o.now) return `OVERLOADED now: ${o.message}; ${buffers}`;
  if (o.episodes > 0)
    return `keeping up now; overloaded ${o.episodes} time(s), last at ${o.lastMbit} Mbit/s (${o.lastAt}): ${drops}; ${buffers}`;
  return `keeping up: nothing dropped by the receiver itself at ${o.rateMbit} Mbit/s now; ${buffers}`;
}

/** The last calibration this receiver measured, if any. */
function calibrationLine(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const r = readCalibration(file);
    const steps = r.steps
      .map(
        (s) =>
          `${s.rateMbit} ${s.whole && s.localDrops === 0 ? 'ok' : s.whole ? `${s.localDrops} dropped` : `lost (${s.error})`}`,
      )
      .join(', ');
    return `last calibration (${r.at}, ${r.steps.length} of ${r.of} steps): sustained ${r.sustainedMbit ?? 'none'} Mbit/s; steps ${steps}; copy ${file} to the sender (link.calibration)`;
  } catch (err) {
    return `calibration: ${(err as Error).message}`;
  }
}

export function receiverStatus(config: RecvConfig): { text: string; json: Json } {
  const live = readStats(config.stats.file);
  const spool = config.files.spool ?? (config.files.inbox ? join(config.files.inbox, '.tacmesh') : undefined);
  const quarantined: Json[] = [];
  const qdir = spool ? join(spool, 'quarantine') : undefined;
  for (const e of qdir && existsSync(qdir) ? readdirSync(qdir) : []) {
    try {
      quarantined.push({
        dir: join(qdir!, e),
        ...JSON.parse(readFileSync(join(qdir!, e, 'error.json'), 'utf8')),
      });
    } catch {
      quarantined.push({ dir: join(qdir!, e), error: 'no error record' });
    }
  }
  const received = auditEvents(config.audit.file, ['file-received']);
  const incoming: Json[] = live?.stats.files?.incoming ?? [];
  const lines = [
    `receiver: ${live ? `running (stats ${Math.round(live.ageMs / 1000)} s old)` : 'no stats file (not running, or stats.file not set)'}`,
  ];
  if (live) {
    const l = live.stats.link;
    const h = l.health;
    lines.push(
      `link: ${h.alive ? 'up' : 'DOWN'}, ${h.heartbeats} heartbeats, loss ${h.datagramLoss === null || h.datagramLoss === undefined ? '-' : `${(h.datagramLoss * 100).toFixed(2)} %`}, ` +
        `${l.frames} frames, ${l.duplicates} duplicates, ${l.lostFrames} lost, FEC ${l.fec.repaired} blocks repaired / ${l.fec.failed} failed (min spare ${l.fec.minSpare ?? '-'}), ` +
        `auth failures ${Object.values(l.auth as Record<string, number>).reduce((a, b) => a + b, 0)}`,
    );
    lines.push(overloadLine(l));
    const t = live.stats.tcp;
    const reasons = Object.entries(t.abortReasons as Record<string, number>)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(
      `tcp: ${t.completed} sessions delivered (${t.deliveredFromSpool ?? 0} from the spool after a restart), ` +
        `${t.aborted} aborted${reasons ? ` (${reasons})` : ''}, ${t.roundsIgnored ?? 0} rounds ignored (delivered already), ${t.retries ?? 0} destination retries`,
    );
  }
  const calibration = calibrationLine(join(config.stateDir, CALIBRATION_FILE));
  if (calibration) lines.push(calibration);
  const tcpSpool = receiverSpoolDir(config);
  if (tcpSpool) {
    const held = spooled(tcpSpool, 'complete.json');
    lines.push(
      `tcp sessions held complete in the spool: ${held}${live ? ` (${mb(live.stats.tcp.spoolBytes ?? 0)} in all)` : ''}`,
    );
  }
  lines.push(`files received: ${received.length}`);
  for (const e of received.slice(-20))
    lines.push(`  ${e.time}  ${e.name}  ${mb(e.size)}  ${e.sha256}  → ${e.path}`);
  lines.push(`files incomplete (receiving): ${incoming.length}`);
  for (const e of incoming) lines.push(`  ${e.name}  ${e.receivedChunks}/${e.chunks} chunks`);
  lines.push(`files quarantined: ${quarantined.length}`);
  for (const q of quarantined)
    lines.push(
      `  ${q.manifest?.name ?? '?'}  ${q.error}  missing ${(q.missing ?? []).length} range(s)  ${q.dir}`,
    );
  return {
    text: lines.join('\n'),
    json: { role: 'receiver', running: !!live, stats: live?.stats ?? null, received, incoming, quarantined },
  };
}
