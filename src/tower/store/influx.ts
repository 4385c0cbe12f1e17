/**
 * The paper's store: every stored batch also written to an InfluxDB 1.x server as line
 * protocol (HTTP /write). Batched, retried with backoff, bounded: when InfluxDB is away
 * longer than the buffer lasts, the oldest points are dropped and counted, and the error
 * is logged — DuckDB stays the store of record.
 */
import { towerLog as log } from '../../shared/log.js';
import type { IngestBatch } from '../model.js';

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

/** Line protocol for one batch: measurements flow, http, monitor. */
export function toLines(batch: IngestBatch): string[] {
  const lines: string[] = [];
  for (const f of batch.flows) {
    lines.push(
      `flow,node=${tag(f.node)},iface=${tag(f.iface)},direction=${f.direction},locality=${f.locality},protocol=${f.protocol},src=${tag(f.src)},dst=${tag(f.dst)}` +
        ` src_port=${f.srcPort}i,dst_port=${f.dstPort}i,packets=${f.packets}i,bytes=${f.bytes}i,seq=${f.seq}i ${ns(f.timeMs, f.seq)}`,
    );
  }
  for (const h of batch.http) {
    lines.push(
      `http,node=${tag(h.node)},iface=${tag(h.iface)},response=${h.response},locality=${h.locality}` +
        ` src=${str(h.src)},dst=${str(h.dst)},method=${str(h.method)},url=${str(h.url)},host=${str(h.host)},status=${h.status}i,seq=${h.seq}i ${ns(h.timeMs, h.seq)}`,
    );
  }
  for (const s of batch.stats) {
    lines.push(
      `monitor,node=${tag(s.node)} active_flows=${s.activeFlows}i,packets_seen=${s.packetsSeen}i,bytes_seen=${s.bytesSeen}i,events_dropped=${s.eventsDropped}i,seq=${s.seq}i ${ns(s.timeMs, s.seq)}`,
    );
  }
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
