/**
 * The tower's time-series store: an embedded DuckDB file. Batches are appended with
 * DuckDB appenders (the fast path); every stored record keeps its node and seq, from which
 * the store rebuilds, at open, which seqs it already holds — so a resend is stored once.
 * Old rows are rolled up into one-minute buckets, then removed after the retention.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type DuckDBAppender, type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { AgentEventRow, IngestBatch } from '../model.js';
import { BATCH_LATENESS_MS, LATENCY_PERIOD_MS, RESPONSE_WAIT_MS, ROLL_UP_LATENCY } from './http-latency.js';
import { SCHEMA } from './schema.js';
import { SeqRanges } from './seq-ranges.js';

export interface StoreOptions {
  /** Raw flows, HTTP events and stats are kept this long. */
  retentionDays: number;
  /** One-minute roll-ups are kept this long. */
  rollupRetentionDays: number;
  /** Gaps kept track of in a node's stored seqs (default 10 000); past it the oldest are closed. */
  seqGapsPerNode?: number;
}

export interface QosAuditRow {
  timeMs: number;
  /** the operator's token name, or "auto" for the closed loop */
  who: string;
  /** set | refused | auto-lower | auto-restore */
  action: string;
  version: number;
  summary: string;
  /** the policy as set (refused: as submitted) */
  policy: unknown;
}

export interface NodeRow {
  name: string;
  subnets: string[];
  slices: unknown[];
  lat: number | null;
  lon: number | null;
  software: string;
  firstSeenMs: number;
  lastSeenMs: number;
  status: unknown;
  monitor: unknown;
}

const MINUTE = 60_000;
const DAY = 86_400_000;

export class DuckStore {
  /** Which seqs of each node are stored (resends are recognised against it). */
  readonly stored = new Map<string, SeqRanges>();
  private appendersOpen = false;
  private flowsAppender!: DuckDBAppender;
  private httpAppender!: DuckDBAppender;
  private statsAppender!: DuckDBAppender;
  private linksAppender!: DuckDBAppender;

  private constructor(
    readonly path: string,
    private readonly instance: DuckDBInstance,
    private readonly writer: DuckDBConnection,
    /** A second connection, so queries never wait behind an append. */
    readonly reader: DuckDBConnection,
    readonly options: StoreOptions,
  ) {}

  static async open(path: string, options: StoreOptions): Promise<DuckStore> {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(path);
    } catch (err) {
      throw new Error(`cannot open the tower store ${path}: ${(err as Error).message}`);
    }
    const writer = await instance.connect();
    const reader = await instance.connect();
    const store = new DuckStore(path, instance, writer, reader, options);
    for (const statement of SCHEMA) await writer.run(statement);
    await store.loadStoredSeqs();
    await store.openAppenders();
    return store;
  }

  private newRanges(): SeqRanges {
    return new SeqRanges(this.options.seqGapsPerNode);
  }

  private async openAppenders(): Promise<void> {
    this.flowsAppender = await this.writer.createAppender('flows');
    this.httpAppender = await this.writer.createAppender('http');
    this.statsAppender = await this.writer.createAppender('monitor_stats');
    this.linksAppender = await this.writer.createAppender('mesh_links');
    this.appendersOpen = true;
  }

  /** Islands of consecutive seqs per node, over every table that holds records. */
  private async loadStoredSeqs(): Promise<void> {
    const result = await this.writer.runAndReadAll(`
      WITH s AS (SELECT node, seq FROM flows UNION ALL SELECT node, seq FROM http UNION ALL SELECT node, seq FROM monitor_stats UNION ALL SELECT node, seq FROM mesh_links),
      d AS (SELECT DISTINCT node, seq FROM s),
      g AS (SELECT node, seq, seq - row_number() OVER (PARTITION BY node ORDER BY seq) AS grp FROM d)
      SELECT node, min(seq)::DOUBLE AS lo, max(seq)::DOUBLE AS hi FROM g GROUP BY node, grp ORDER BY node, lo`);
    for (const row of result.getRowObjectsJS()) {
      const node = String(row.node);
      let ranges = this.stored.get(node);
      if (!ranges) {
        ranges = this.newRanges();
        this.stored.set(node, ranges);
      }
      ranges.add(Number(row.lo), Number(row.hi));
    }
  }

  /**
   * Appends the records of a batch that are not stored yet and returns how many were new.
   * Records are flushed (committed) before this resolves: only then may the batch be acked.
   */
  append(batch: IngestBatch): Promise<number> {
    return this.exclusive(() => this.appendNow(batch));
  }

  /**
   * The writer connection does one thing at a time: a statement running on DuckDB's threads
   * while an appender flushes on the same connection fails one of them (a node's events
   * would make another node's batch fail to store).
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private queue: Promise<unknown> = Promise.resolve();

  private async appendNow(batch: IngestBatch): Promise<number> {
    try {
      return this.appendRows(batch);
    } catch (err) {
      // A failed flush (a full disk, say) leaves the appenders unusable: start them afresh.
      // Nothing of the batch is marked stored, so the node's resend will bring it again.
      this.close(false);
      await this.openAppenders();
      throw new Error(`storing a batch from ${batch.node} failed: ${(err as Error).message}`);
    }
  }

  private appendRows(batch: IngestBatch): number {
    let ranges = this.stored.get(batch.node);
    if (!ranges) {
      ranges = this.newRanges();
      this.stored.set(batch.node, ranges);
    }
    const have = ranges;
    let added = 0;
    const f = this.flowsAppender;
    for (const r of batch.flows) {
      if (have.has(r.seq)) continue;
      f.appendBigInt(BigInt(r.timeMs));
      f.appendVarchar(r.node);
      f.appendUBigInt(BigInt(r.seq));
      f.appendVarchar(r.iface);
      f.appendVarchar(r.direction);
      f.appendUTinyInt(r.ipVersion);
      f.appendVarchar(r.src);
      f.appendVarchar(r.dst);
      f.appendUSmallInt(r.srcPort);
      f.appendUSmallInt(r.dstPort);
      f.appendUTinyInt(r.protocol);
      f.appendUBigInt(BigInt(r.packets));
      f.appendUBigInt(BigInt(r.bytes));
      f.appendUTinyInt(r.tcpFlags);
      f.appendUTinyInt(r.dscp);
      f.appendBigInt(BigInt(r.firstSeenMs));
      f.appendVarchar(r.locality);
      if (r.srcNode === null) f.appendNull();
      else f.appendVarchar(r.srcNode);
      if (r.dstNode === null) f.appendNull();
      else f.appendVarchar(r.dstNode);
      f.endRow();
      added++;
    }
    const h = this.httpAppender;
    for (const r of batch.http) {
      if (have.has(r.seq)) continue;
      h.appendBigInt(BigInt(r.timeMs));
      h.appendVarchar(r.node);
      h.appendUBigInt(BigInt(r.seq));
      h.appendVarchar(r.iface);
      h.appendVarchar(r.direction);
      h.appendUTinyInt(r.ipVersion);
      h.appendVarchar(r.src);
      h.appendVarchar(r.dst);
      h.appendUSmallInt(r.srcPort);
      h.appendUSmallInt(r.dstPort);
      h.appendBoolean(r.response);
      h.appendVarchar(r.method);
      h.appendVarchar(r.url);
      h.appendVarchar(r.host);
      h.appendUSmallInt(r.status);
      h.appendVarchar(r.version);
      h.appendBoolean(r.truncated);
      h.appendVarchar(r.locality);
      h.endRow();
      added++;
    }
    const s = this.statsAppender;
    for (const r of batch.stats) {
      if (have.has(r.seq)) continue;
      s.appendBigInt(BigInt(r.timeMs));
      s.appendVarchar(r.node);
      s.appendUBigInt(BigInt(r.seq));
      for (const v of [
        r.activeFlows,
        r.packetsSeen,
        r.bytesSeen,
        r.flowMapFull,
        r.httpEvents,
        r.eventsDropped,
        r.malformed,
        r.recordsLost,
      ]) {
        s.appendUBigInt(BigInt(v));
      }
      s.endRow();
      added++;
    }
    added += this.appendLinks(batch, have);
    f.flushSync();
    h.flushSync();
    s.flushSync();
    this.linksAppender.flushSync();
    have.addSeqs(
      [batch.flows, batch.http, batch.stats, batch.links].flatMap((rows) => rows.map((r) => r.seq)),
    );
    return added;
  }

  private appendLinks(batch: IngestBatch, have: SeqRanges): number {
    const a = this.linksAppender;
    const orNull = (v: number | null) => (v === null ? a.appendNull() : a.appendDouble(v));
    let added = 0;
    for (const r of batch.links) {
      if (have.has(r.seq)) continue;
      a.appendBigInt(BigInt(r.timeMs));
      a.appendVarchar(r.node);
      a.appendUBigInt(BigInt(r.seq));
      a.appendVarchar(r.iface);
      a.appendVarchar(r.address);
      a.appendVarchar(r.neighbour);
      a.appendVarchar(r.state);
      a.appendVarchar(JSON.stringify(r.why));
      a.appendBigInt(BigInt(r.sinceMs));
      a.appendUInteger(r.probesSent);
      a.appendUInteger(r.probesAnswered);
      for (const v of [r.rttMinMs, r.rttMeanMs, r.rttP95Ms, r.jitterMs]) orNull(v);
      a.appendDouble(r.lossForwardPct);
      a.appendDouble(r.lossBackwardPct);
      a.appendUBigInt(BigInt(r.capacityBps));
      a.appendUBigInt(BigInt(r.maxCapacityBps));
      a.appendVarchar(r.capacityFrom);
      a.appendUBigInt(BigInt(r.loadTxBps));
      a.appendUBigInt(BigInt(r.loadRxBps));
      a.appendDouble(r.utilization);
      a.endRow();
      added++;
    }
    return added;
  }

  saveNode(node: NodeRow): Promise<void> {
    return this.exclusive(() => this.writeSaveNode(node));
  }

  private async writeSaveNode(node: NodeRow): Promise<void> {
    await this.writer.run(`INSERT OR REPLACE INTO nodes VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, [
      node.name,
      JSON.stringify(node.subnets),
      JSON.stringify(node.slices),
      node.lat,
      node.lon,
      node.software,
      node.firstSeenMs,
      node.lastSeenMs,
      JSON.stringify(node.status ?? null),
      JSON.stringify(node.monitor ?? null),
    ]);
  }

  async loadNodes(): Promise<NodeRow[]> {
    const r = await this.reader.runAndReadAll(
      'SELECT name, subnets, slices, lat, lon, software, first_seen_ms::DOUBLE AS f, last_seen_ms::DOUBLE AS l, status, monitor FROM nodes',
    );
    return r.getRowObjectsJS().map((row) => ({
      name: String(row.name),
      subnets: JSON.parse(String(row.subnets)) as string[],
      slices: JSON.parse(String(row.slices)) as unknown[],
      lat: row.lat === null ? null : Number(row.lat),
      lon: row.lon === null ? null : Number(row.lon),
      software: String(row.software),
      firstSeenMs: Number(row.f),
      lastSeenMs: Number(row.l),
      status: JSON.parse(String(row.status)),
      monitor: JSON.parse(String(row.monitor)),
    }));
  }

  appendQosAudit(row: QosAuditRow): Promise<void> {
    return this.exclusive(() => this.writeAppendQosAudit(row));
  }

  private async writeAppendQosAudit(row: QosAuditRow): Promise<void> {
    await this.writer.run('INSERT INTO qos_audit VALUES ($1, $2, $3, $4, $5, $6)', [
      row.timeMs,
      row.who,
      row.action,
      row.version,
      row.summary,
      JSON.stringify(row.policy ?? null),
    ]);
  }

  /** The newest `limit` audit rows, newest first. */
  async loadQosAudit(limit: number): Promise<QosAuditRow[]> {
    const r = await this.reader.runAndReadAll(
      `SELECT time_ms::DOUBLE AS t, who, action, version::DOUBLE AS v, summary, policy
       FROM qos_audit ORDER BY time_ms DESC, rowid DESC LIMIT ${Math.max(1, Math.floor(limit))}`,
    );
    return r.getRowObjectsJS().map((row) => ({
      timeMs: Number(row.t),
      who: String(row.who),
      action: String(row.action),
      version: Number(row.v),
      summary: String(row.summary),
      policy: JSON.parse(String(row.policy)) as unknown,
    }));
  }

  appendEvent(e: AgentEventRow): Promise<void> {
    return this.exclusive(() => this.writeAppendEvent(e));
  }

  private async writeAppendEvent(e: AgentEventRow): Promise<void> {
    await this.writer.run('INSERT INTO agent_events VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
      e.timeMs,
      e.node,
      e.entity,
      e.problem,
      e.action,
      e.ok,
      e.cause,
      e.error,
      e.tookMs,
    ]);
  }

  /**
   * Rolls whole minutes older than two minutes up into flows_1m (once each), then removes
   * raw rows past the retention and roll-ups past theirs.
   */
  maintain(nowMs = Date.now()): Promise<void> {
    return this.exclusive(() => this.maintainNow(nowMs));
  }

  private async maintainNow(nowMs: number): Promise<void> {
    const state = await this.writer.runAndReadAll(
      `SELECT done_ms::DOUBLE AS d FROM rollup_state WHERE name = 'flows_1m'`,
    );
    const done = Number(state.getRowObjectsJS()[0]?.d ?? 0);
    const upTo = Math.floor((nowMs - 2 * MINUTE) / MINUTE) * MINUTE;
    if (upTo > done) {
      await this.writer.run('BEGIN TRANSACTION');
      try {
        await this.writer.run(
          `INSERT INTO flows_1m
           SELECT (time_ms // 60000) * 60000, node, src, dst, protocol, locality, src_node, dst_node,
                  sum(packets), sum(bytes), count(*)
           FROM flows WHERE time_ms >= $1 AND time_ms < $2
           GROUP BY ALL`,
          [done, upTo],
        );
        await this.writer.run(`INSERT OR REPLACE INTO rollup_state VALUES ('flows_1m', $1)`, [upTo]);
        await this.writer.run('COMMIT');
      } catch (err) {
        await this.writer.run('ROLLBACK');
        throw err;
      }
    }
    const rawCut = nowMs - this.options.retentionDays * DAY;
    for (const table of ['flows', 'http', 'monitor_stats', 'mesh_links', 'agent_events']) {
      await this.writer.run(`DELETE FROM ${table} WHERE time_ms < $1`, [rawCut]);
    }
    await this.writer.run('DELETE FROM flows_1m WHERE minute_ms < $1', [
      nowMs - this.options.rollupRetentionDays * DAY,
    ]);
    await this.writer.run('DELETE FROM http_latency WHERE period_ms < $1', [
      nowMs - this.options.rollupRetentionDays * DAY,
    ]);
  }

  /**
   * Rolls the HTTP lines of whole periods whose responses and batches are all in (older than
   * RESPONSE_WAIT_MS + BATCH_LATENESS_MS) into latency histograms, once each; returns the
   * end of the rolled-up time.
   */
  rollUpLatency(nowMs = Date.now()): Promise<number> {
    return this.exclusive(async () => {
      const state = await this.writer.runAndReadAll(
        `SELECT done_ms::DOUBLE AS d FROM rollup_state WHERE name = 'http_latency'`,
      );
      const done = Number(state.getRowObjectsJS()[0]?.d ?? 0);
      const upTo =
        Math.floor((nowMs - RESPONSE_WAIT_MS - BATCH_LATENESS_MS) / LATENCY_PERIOD_MS) * LATENCY_PERIOD_MS;
      if (upTo <= done) return done;
      await this.writer.run('BEGIN TRANSACTION');
      try {
        await this.writer.run(ROLL_UP_LATENCY, [done, upTo]);
        await this.writer.run(`INSERT OR REPLACE INTO rollup_state VALUES ('http_latency', $1)`, [upTo]);
        await this.writer.run('COMMIT');
      } catch (err) {
        await this.writer.run('ROLLBACK');
        throw err;
      }
      return upTo;
    });
  }

  close(everything = true): void {
    if (this.appendersOpen) {
      this.appendersOpen = false;
      for (const a of [this.flowsAppender, this.httpAppender, this.statsAppender, this.linksAppender]) {
        try {
          a.closeSync();
        } catch {
          // an appender whose flush failed may refuse to close; it is dropped either way
        }
      }
    }
    if (!everything) return;
    this.writer.closeSync();
    this.reader.closeSync();
    this.instance.closeSync();
  }
}
