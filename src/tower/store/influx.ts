/**
 * The paper's store: every stored batch also written to an InfluxDB 1.x server as line
 * protocol (HTTP /write), every column of every record table. Batched, retried with backoff, bounded: when InfluxDB is away
 * longer than the buffer lasts, the oldest points are dropped and counted, and the error
 * is logged — DuckDB stays the store of record.
 */
import { towerLog as log } from '../../shared/log.js';
import type { IngestBatch } from '../model.js';
import type { BatchKey, ColumnType, RecordOf, SomeRecordTable, StoredRecord } from './columns.js';
import { RECORD_TABLES } from './tables.js';

export interface InfluxOptions {
  /** http://127.0.0.1:8086 */
  url: string;
  database: string;
  maxBufferedPoints?: number;
  flushEveryMs?: number;
  batchPoints?: number;
}

const tag = (v: string) => v.replace(/[,= \\]/g, (c) => `\\${c}`);
const str = (v: string) => `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"`;

/**
 * A point's time in ns: the record's ms, and below the ms the record's seq, so two records
 * of one series in the same millisecond stay two points (InfluxDB keeps one per series and
 * time) and a resent record overwrites itself.
 */
const ns = (ms: number, seq: number) => `${ms}${String(seq % 1_000_000).padStart(6, '0')}`;

const INTEGER = new Set<ColumnType>(['BIGINT', 'UBIGINT', 'UINTEGER', 'USMALLINT', 'UTINYINT']);

function fieldValue(type: ColumnType, v: unknown): string {
  if (INTEGER.has(type)) return `${v}i`;
  if (type === 'JSON') return str(JSON.stringify(v));
  if (type === 'VARCHAR') return str(String(v));
  return String(v); // DOUBLE, BOOLEAN
}

/**
 * One table's rows as points of its measurement: the tag columns are the series, every
 * other column but the time a field (NULLs left out), the time the point's.
 */
function lineWriter(t: SomeRecordTable): (r: StoredRecord) => string {
  const tags = t.columns.filter((c) => c.tag);
  const fields = t.columns.filter((c) => !c.tag && !c.time);
  return (r) => {
    const row = r as unknown as Record<string, unknown>;
    let line = t.measurement;
    for (const c of tags) {
      const v = row[c.field];
      if (v !== null && v !== '') line += `,${c.name}=${tag(String(v))}`;
    }
    const values: string[] = [];
    for (const c of fields) {
      const v = row[c.field];
      if (v !== null && v !== undefined) values.push(`${c.name}=${fieldValue(c.type, v)}`);
    }
    return `${line} ${values.join(',')} ${ns(r.timeMs, r.seq)}`;
  };
}

const WRITERS = (Object.values(RECORD_TABLES) as SomeRecordTable[]).map((t) => ({
  table: t,
  line: lineWriter(t),
}));

/** Line protocol for one batch: every stored record, as its table declares it (tables.ts). */
export function toLines(batch: IngestBatch): string[] {
  const lines: string[] = [];
  for (const w of WRITERS)
    for (const r of batch[w.table.batch] as RecordOf<BatchKey>[])
      for (const row of w.table.rows(r)) lines.push(w.line(row));
  return lines;
}

export class InfluxSink {
  private buffer: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;
  private backoffMs = 0;
  readonly counters = { pointsWritten: 0, pointsDropped: 0, writeErrors: 0, lastError: '' };

  constructor(private readonly options: InfluxOptions) {}

  async start(): Promise<void> {
    await this.query(`CREATE DATABASE "${this.options.database}"`).catch((err: Error) => {
      this.counters.lastError = err.message;
      log.warn({ err }, 'InfluxDB: cannot create the database now; will keep trying to write');
    });
    this.timer = setInterval(() => void this.flush(), this.options.flushEveryMs ?? 1000);
  }

  write(batch: IngestBatch): void {
    this.buffer.push(...toLines(batch));
    const max = this.options.maxBufferedPoints ?? 500_000;
    if (this.buffer.length > max) {
      const drop = this.buffer.length - max;
      this.buffer.splice(0, drop);
      this.counters.pointsDropped += drop;
    }
  }

  get buffered(): number {
    return this.buffer.length;
  }

  async query(q: string): Promise<unknown> {
    const res = await fetch(
      `${this.options.url}/query?db=${encodeURIComponent(this.options.database)}&epoch=ms`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `q=${encodeURIComponent(q)}`,
      },
    );
    if (!res.ok) throw new Error(`InfluxDB query: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  }

  /** Writes what is buffered, in chunks; on failure keeps it and backs off. */
  async flush(): Promise<void> {
    if (this.flushing || this.buffer.length === 0) return;
    this.flushing = true;
    try {
      while (this.buffer.length) {
        const chunk = this.buffer.slice(0, this.options.batchPoints ?? 5000);
        const res = await fetch(
          `${this.options.url}/write?db=${encodeURIComponent(this.options.database)}&precision=ns`,
          { method: 'POST', body: chunk.join('\n') },
        );
        if (!res.ok) throw new Error(`HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
        this.buffer.splice(0, chunk.length);
        this.counters.pointsWritten += chunk.length;
        this.backoffMs = 0;
      }
    } catch (err) {
      this.counters.writeErrors++;
      this.counters.lastError = (err as Error).message;
      this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 500), 30_000);
      log.warn(
        { reason: this.counters.lastError, buffered: this.buffer.length, retryInMs: this.backoffMs },
        'InfluxDB write failed',
      );
      await new Promise((r) => setTimeout(r, this.backoffMs));
    } finally {
      this.flushing = false;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
