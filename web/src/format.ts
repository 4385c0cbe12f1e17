/** Numbers, sizes, rates and times as an operator reads them. */

const SI = ['', 'k', 'M', 'G', 'T', 'P'];

function si(v: number, unit: string, base = 1000): string {
  if (!Number.isFinite(v)) return '–';
  let i = 0;
  let x = Math.abs(v);
  while (x >= base && i < SI.length - 1) {
    x /= base;
    i++;
  }
  const digits = x >= 100 || i === 0 ? 0 : x >= 10 ? 1 : 2;
  return `${v < 0 ? '-' : ''}${x.toFixed(digits)} ${SI[i]}${unit}`;
}

export const bytes = (v: number) => si(v, 'B', 1024).replace(/ ([kMGTP])B/, ' $1iB');
export const bits = (v: number) => si(v, 'bit/s');
export const count = (v: number) => (Math.abs(v) < 10_000 ? String(Math.round(v)) : si(v, '').trim());
export const rate = (v: number, unit: string) => `${v < 10 ? v.toFixed(1) : count(v)} ${unit}/s`;
export const percent = (part: number, total: number) =>
  total > 0 ? `${((100 * part) / total).toFixed(part === total ? 0 : 1)} %` : '–';

const pad = (n: number) => String(n).padStart(2, '0');

/** 14:03:07 (today) or 11-22 14:03 (other days). */
export function time(ms: number): string {
  const d = new Date(ms);
  const now = new Date();
  const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return d.toDateString() === now.toDateString()
    ? hms
    : `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hms}`;
}

/** "3 s ago", "5 min ago", "2 h ago". */
export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

/** The value of a datetime-local input for a time. */
export function localInput(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function span(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 86_400_000) return `${+(ms / 3_600_000).toFixed(1)} h`;
  return `${+(ms / 86_400_000).toFixed(1)} d`;
}
