/**
 * The demo's closing report: every file the sender accepted is either in the inbox and
 * bit-identical to what was sent (the demo hashes it itself), or reported incomplete —
 * still being received, or quarantined with the reason. Anything else (a file in the inbox
 * that differs, a file gone without a word) fails the report. The TCP and UDP streams'
 * delivery and what the link did come with it.
 */
import type { DemoState } from './demo.js';
import type { Snapshot } from './watch.js';

export type Outcome = 'bit-identical' | 'incomplete' | 'NOT IDENTICAL' | 'LOST UNREPORTED';

export interface FileOutcome {
  name: string;
  size: number;
  sha256: string;
  outcome: Outcome;
  detail: string;
}

export interface DemoReport {
  ok: boolean;
  files: FileOutcome[];
  tcp: Snapshot['tcp'];
  udp: Snapshot['udp'];
  link: Snapshot['link'];
  receiver: { fecRepaired: number; fecFailed: number; framesRebuilt: number; lostFrames: number } | null;
  oneWay: boolean;
}

function outcome(f: Snapshot['files'][number]): { outcome: Outcome; detail: string } {
  switch (f.state) {
    case 'complete':
      return { outcome: 'bit-identical', detail: `in the inbox: ${f.path}` };
    case 'receiving':
      return {
        outcome: 'incomplete',
        detail: `the receiver is still receiving it (${Math.floor((f.recv?.fraction ?? 0) * 100)} % of its chunks)`,
      };
    case 'quarantined':
      return { outcome: 'incomplete', detail: `quarantined by the receiver: ${f.error}` };
    case 'sending':
      return { outcome: 'incomplete', detail: 'still being sent (its rounds have not all left)' };
    case 'differs':
      return { outcome: 'NOT IDENTICAL', detail: `in the inbox (${f.path}) with another SHA-256` };
    case 'incomplete':
      return { outcome: 'LOST UNREPORTED', detail: 'every round left and the receiver never reported it' };
  }
}

export function demoReport(state: DemoState, snap: Snapshot): DemoReport {
  const files = snap.files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256, ...outcome(f) }));
  const r = snap.receiver;
  const oneWay = state.proof.oneWay && snap.link.backward.passed === 0;
  return {
    ok:
      files.every((f) => f.outcome === 'bit-identical' || f.outcome === 'incomplete') &&
      snap.tcp.gaps === 0 &&
      oneWay,
    files,
    tcp: snap.tcp,
    udp: snap.udp,
    link: snap.link,
    receiver: r
      ? {
          fecRepaired: r.fec.repaired,
          fecFailed: r.fec.failed,
          framesRebuilt: r.fec.recovered,
          lostFrames: r.lostFrames,
        }
      : null,
    oneWay,
  };
}

export function reportText(r: DemoReport): string {
  const lines = ['', 'REPORT', ''];
  const identical = r.files.filter((f) => f.outcome === 'bit-identical').length;
  const incomplete = r.files.filter((f) => f.outcome === 'incomplete').length;
  lines.push(
    `files: ${r.files.length} sent — ${identical} bit-identical in the inbox, ${incomplete} reported incomplete, ${r.files.length - identical - incomplete} otherwise`,
  );
  for (const f of r.files)
    lines.push(
      `  ${f.outcome.padEnd(15)} ${f.name}  ${f.size} bytes  sha256 ${f.sha256.slice(0, 16)}…  ${f.detail}`,
    );
  const t = r.tcp;
  lines.push(
    `syslog (TCP): ${t.linesSent} lines in ${t.sessionsSent} sessions sent, ${t.linesDelivered} delivered; ${t.complete} destination connections ended cleanly, ${t.reset} reset (data missing: reset, never delivered with a hole), ${t.gaps} gaps`,
  );
  const u = r.udp;
  lines.push(
    `telemetry (UDP): ${u.sent} datagrams sent, ${u.delivered} delivered (${u.sent ? ((100 * u.delivered) / u.sent).toFixed(2) : '–'} %) — UDP is neither stored nor sent again: what the link or a receiver restart loses stays lost`,
  );
  if (r.receiver)
    lines.push(
      `FEC: ${r.receiver.fecRepaired} blocks repaired, ${r.receiver.fecFailed} failed, ${r.receiver.framesRebuilt} frames rebuilt; ${r.receiver.lostFrames} frames lost for good`,
    );
  const f = r.link.forward;
  lines.push(
    `link: ${f.dropped} of ${f.passed + f.dropped} packets lost forward in ${f.bursts} bursts; going back ${r.link.backward.passed} passed, ${r.link.backward.dropped} dropped — ${r.oneWay ? 'nothing crossed back' : 'SOMETHING CROSSED BACK'}`,
  );
  lines.push(
    '',
    r.ok
      ? 'OK: every file arrived bit-identical or was reported incomplete, and nothing else happened.'
      : 'FAILED: a file arrived altered or went missing without a report, a stream had a hole, or something crossed back (above).',
  );
  return lines.join('\n');
}
