/**
 * The audit log: one JSON line per event of a session or a file (opened, delivered, aborted,
 * accepted, sent, quarantined...), appended as it happens, so an operator can prove what
 * crossed the diode and what did not. `{"time":..., "role":"sender"|"receiver", "event":..., ...}`.
 */
import { appendFileSync } from 'node:fs';
import { diodeLog as log } from '../shared/log.js';

export class AuditLog {
  private failed = false;

  constructor(
    private readonly file: string | undefined,
    private readonly role: 'sender' | 'receiver',
  ) {}

  write(event: string, fields: Record<string, unknown>): void {
    if (!this.file) return;
    const line = `${JSON.stringify({ time: new Date().toISOString(), role: this.role, event, ...fields })}\n`;
    try {
      appendFileSync(this.file, line, { mode: 0o600 });
      this.failed = false;
    } catch (err) {
      if (!this.failed) log.error({ err, file: this.file }, 'cannot write the audit log');
      this.failed = true;
    }
  }
}

/** Reads an audit log back (status); unreadable lines are skipped. */
export function readAudit(text: string): { time: string; event: string; [k: string]: unknown }[] {
  return text
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [JSON.parse(l)];
      } catch {
        return [];
      }
    });
}
