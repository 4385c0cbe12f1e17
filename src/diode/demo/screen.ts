/**
 * The demo's live screen: both ends of the diode from one snapshot (watch.ts), as lines of
 * text — the link as set and as the receiver sees it, FEC, heartbeats, files with a bar for
 * each end, the TCP and UDP streams' delivery, recent events. Pure: snapshot in, lines out.
 */
import { describeProof } from '../../netlab/one-way-proof.js';
import type { DemoState } from './demo.js';
import { fecTable, RECV_ADDR, ROUNDS, SEND_ADDR } from './plan.js';
import type { FileView, Snapshot } from './watch.js';

export interface Paint {
  ok(s: string): string;
  bad(s: string): string;
  warn(s: string): string;
  dim(s: string): string;
  bold(s: string): string;
}

const ansi = (code: string) => (s: string) => `\x1b[${code}m${s}\x1b[0m`;
export const COLOURS: Paint = {
  ok: ansi('32'),
  bad: ansi('31;1'),
  warn: ansi('33'),
  dim: ansi('2'),
  bold: ansi('1'),
};
const same = (s: string) => s;
export const PLAIN: Paint = { ok: same, bad: same, warn: same, dim: same, bold: same };

const n = (v: number) => Math.round(v).toLocaleString('en-US');
const pct = (v: number | null | undefined, digits = 2) =>
  v === null || v === undefined ? '–' : `${(v * 100).toFixed(digits)} %`;
const mbit = (v: number) => `${v.toFixed(1)} Mbit/s`;
const mb = (bytes: number) =>
  bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(0)} kB`;

export function bar(fraction: number, width = 20): string {
  const f = Math.max(0, Math.min(1, fraction));
  const filled = Math.round(f * width);
  return `[${'#'.repeat(filled)}${'·'.repeat(width - filled)}] ${(f * 100).toFixed(0).padStart(3)} %`;
}

function uptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function fileLine(f: FileView, p: Paint): string {
  const head = `   ${f.name.slice(0, 22).padEnd(22)} ${mb(f.size).padStart(8)}  `;
  switch (f.state) {
    case 'complete':
      return `${head}${p.ok('✓ bit-identical')} ${p.dim(`→ ${f.path ?? ''}`)}`;
    case 'differs':
      return `${head}${p.bad('✗ in the inbox but NOT identical to what was sent')}`;
    case 'quarantined':
      return `${head}${p.warn(`quarantined: ${f.error ?? ''}`)}`;
    case 'incomplete':
      return `${head}${p.warn('incomplete: every round has left, the receiver never completed it')}`;
    default: {
      const s = f.send;
      const send = s
        ? `send ${bar(s.fraction, 16)} round ${s.round}/${ROUNDS} ${mbit((s.rate * 8) / 1e6).padStart(12)}`
        : `send ${p.dim('queued'.padEnd(46))}`;
      const recv = f.recv ? `recv ${bar(f.recv.fraction, 16)}` : `recv ${p.dim('waiting for its manifest')}`;
      return `${head}${send}  ${recv}`;
    }
  }
}

export interface ScreenExtras {
  /** Lines of recent events, newest last. */
  events: string[];
  /** What the scenario is doing now, if one plays. */
  scenario?: string;
  keys: boolean;
}

export function render(state: DemoState, snap: Snapshot, extras: ScreenExtras, p: Paint = PLAIN): string[] {
  const out: string[] = [];
  const label = (s: string) => p.bold(s.padEnd(10));
  out.push(
    `${p.bold(' tacmesh diode demo')}  ${state.prefix}   up ${uptime(snap.at - state.startedAt)}${extras.keys ? p.dim('      q quit · f drop a sample file · k kill -9 the receiver') : ''}`,
  );
  if (extras.scenario) out.push(` ${p.warn(`scenario: ${extras.scenario}`)}`);
  out.push('');
  const proof = describeProof(state.proof).split('\n');
  const back = snap.link.backward;
  out.push(
    `${label(' ONE-WAY')}${state.iface.send} ${SEND_ADDR} ══▶ ${RECV_ADDR} ${state.iface.recv}   ${state.proof.oneWay ? p.ok('nothing crosses back') : p.bad('NOT ONE-WAY')}`,
  );
  out.push(`${' '.repeat(10)}${p.dim(`proof at start — ${proof[0]}`)}`);
  out.push(
    `${' '.repeat(10)}going back since: ${back.passed === 0 ? p.ok(`${n(back.passed)} passed`) : p.bad(`${n(back.passed)} passed`)}, ${n(back.dropped)} dropped by the link`,
  );
  const l = snap.link.set;
  const fec = snap.link.fec;
  const over = l.lossPct > fec.lossPct || (l.lossPct > 0 && l.burst > fec.burst);
  out.push(
    `${label(' LINK')}set ${mbit(l.rateMbit)}  loss ${l.lossPct.toFixed(2)} %  bursts of ${l.burst}${extras.keys ? p.dim('      keys: r/R rate  l/L loss  b/B burst') : ''}`,
  );
  const f = snap.link.forward;
  out.push(
    `${' '.repeat(10)}the link lost ${n(f.dropped)} of ${n(f.passed + f.dropped)} packets (${pct(f.dropped / Math.max(1, f.passed + f.dropped))}) in ${n(f.bursts)} bursts`,
  );
  const table = fecTable(fec)
    .filter((x) => x.k >= 256)
    .map((x) => `K ${x.k} → R ${x.r} (${((100 * x.r) / x.k).toFixed(1)} %)`)
    .join(', ');
  out.push(
    `${' '.repeat(10)}FEC sized for ${fec.lossPct.toFixed(2)} % in bursts of ${fec.burst}: ${table}${over ? p.warn('  (the link is set above it: blocks may fail)') : ''}`,
  );
  const s = snap.sender;
  out.push(
    s
      ? `${label(' SENDER')}${s.running ? '' : p.bad('NOT RUNNING  ')}on the wire ${mbit(s.rateMbit)} (paced at ${mbit(s.pacedMbit)})  frames ${n(s.frames)}  FEC repairs ${n(s.repairs)} in ${n(s.fecBlocks)} blocks  copies ${n(s.copies)}  heartbeats 1/s${s.udpDropped ? p.warn(`  UDP dropped (buffer full) ${n(s.udpDropped)}`) : ''}${s.unexpectedInbound ? p.bad(`  ${n(s.unexpectedInbound)} datagrams came back!`) : ''}`
      : `${label(' SENDER')}${p.dim('starting')}`,
  );
  const r = snap.receiver;
  if (!r?.running) {
    out.push(
      `${label(' RECEIVER')}${p.bad('NOT RUNNING')}${r ? p.dim(`  (last seen: ${n(r.heartbeats)} heartbeats)`) : ''}`,
    );
  } else {
    const ago = r.lastHeartbeatAgoMs === null ? '–' : `${(r.lastHeartbeatAgoMs / 1000).toFixed(1)} s ago`;
    out.push(
      `${label(' RECEIVER')}link ${r.alive ? p.ok('UP') : p.bad('DOWN')}  heartbeats ${n(r.heartbeats)} (last ${ago})   arriving ${mbit(r.rateMbit)}   loss ${pct(r.lossRecent)} (3 s) / ${pct(r.lossTotal)} (all)`,
    );
    out.push(
      `${' '.repeat(10)}FEC blocks ${n(r.fec.blocks)}: ${n(r.fec.intact)} intact, ${n(r.fec.repaired)} repaired, ${r.fec.failed ? p.bad(`${n(r.fec.failed)} failed`) : '0 failed'} · frames rebuilt ${n(r.fec.recovered)} · min spare ${r.fec.minSpare ?? '–'}`,
    );
    out.push(
      `${' '.repeat(10)}copies dropped ${n(r.duplicates)} · frames lost for good ${n(r.lostFrames)} · auth failures ${n(r.authFailures)} · rejected ${n(r.rejected)}`,
    );
  }
  const count = (st: FileView['state'][]) => snap.files.filter((x) => st.includes(x.state)).length;
  out.push(
    `${label(' FILES')}${p.ok(`${count(['complete'])} complete`)} · ${count(['sending', 'receiving'])} on their way · ${count(['incomplete']) ? p.warn(`${count(['incomplete'])} incomplete`) : '0 incomplete'} · ${count(['quarantined']) ? p.warn(`${count(['quarantined'])} quarantined`) : '0 quarantined'}${count(['differs']) ? p.bad(`  ${count(['differs'])} NOT IDENTICAL`) : ''}`,
  );
  out.push(`${' '.repeat(10)}${p.dim(`outbox ${state.paths.outbox}  →  inbox ${state.paths.inbox}`)}`);
  for (const file of snap.files.slice(-8)) out.push(fileLine(file, p));
  const t = snap.tcp;
  const aborts = Object.entries(t.abortReasons)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  out.push(
    `${label(' TCP')}syslog stream: ${n(t.linesSent)} lines sent in ${n(t.sessionsSent)} closed sessions → ${n(t.linesDelivered)} delivered · ${n(t.complete)} connections ended cleanly, ${t.reset ? p.warn(`${n(t.reset)} reset`) : '0 reset'}${aborts ? p.dim(` (${aborts})`) : ''} · ${t.gaps ? p.bad(`${n(t.gaps)} gaps`) : '0 gaps'}${t.again ? p.dim(` · ${n(t.again)} lines again (a later round)`) : ''}`,
  );
  const u = snap.udp;
  out.push(
    `${label(' UDP')}telemetry: ${n(u.sent)} sent → ${n(u.delivered)} delivered (${pct(u.sent ? u.delivered / u.sent : null)})${u.again ? ` · ${n(u.again)} twice` : ''}`,
  );
  if (extras.events.length) {
    out.push(p.bold(' EVENTS'));
    for (const e of extras.events.slice(-6)) out.push(`   ${e}`);
  }
  return out;
}

/** What changed between two snapshots that deserves a line of its own. */
export function changes(prev: Snapshot | undefined, next: Snapshot): string[] {
  if (!prev) return [];
  const out: string[] = [];
  for (const f of next.files) {
    const before = prev.files.find((x) => x.id === f.id)?.state;
    if (before === f.state) continue;
    if (f.state === 'complete')
      out.push(`${f.name}: in the inbox, bit-identical (SHA-256 ${f.sha256.slice(0, 16)}…)`);
    else if (f.state === 'differs')
      out.push(`${f.name}: in the inbox but its SHA-256 differs from the sender's`);
    else if (f.state === 'quarantined') out.push(`${f.name}: quarantined (${f.error})`);
    else if (f.state === 'incomplete') out.push(`${f.name}: incomplete after its last round`);
    else if (!before) out.push(`${f.name}: taken from the outbox (${mb(f.size)})`);
  }
  const was = prev.receiver?.alive ?? false;
  const is = next.receiver?.alive ?? false;
  if (was !== is)
    out.push(is ? 'receiver: link up, heartbeats arriving' : 'receiver: link down, no heartbeat');
  const failed = (next.receiver?.fec.failed ?? 0) - (prev.receiver?.fec.failed ?? 0);
  if (failed > 0)
    out.push(`FEC: ${failed} block(s) could not be repaired (more loss than they were sized for)`);
  const reset = next.tcp.reset - prev.tcp.reset;
  if (reset > 0)
    out.push(`syslog: ${reset} connection(s) reset at the destination (data missing, never a hole)`);
  return out;
}
