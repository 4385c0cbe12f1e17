/**
 * The tower's time-series store: an embedded DuckDB file, its tables declared once
 * (tables.ts). Opening it migrates the file to the current schema (catalog.ts); batches of
 * records go through appenders with resend recognition (records.ts); the tower's own rows
 * (nodes, agent events, the QoS audit) are inserted and read back by their declarations.
 * One writer connection does one thing at a time; queries read on a second one.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { AgentEventRow, IngestBatch, MeshStepRow, NodeRow, NodeViaRow, QosAuditRow } from '../model.js';
import { ALL_DAYS, Archive } from './archive.js';
import { maintain, openCatalog, type Retention, retentionCuts } from './catalog.js';
import { rowOf, type Table, toStored } from './columns.js';
import { BATCH_LATENESS_MS, LATENCY_PERIOD_MS, RESPONSE_WAIT_MS, ROLL_UP_LATENCY } from './http-latency.js';
import { RecordWriter } from './records.js';
import type { SeqRanges } from './seq-ranges.js';
import { AGENT_EVENTS, MESH_STEPS, NODE_VIA, NODES, QOS_AUDIT } from './tables.js';

export interface StoreOptions extends Retention {
  /** Gaps kept track of in a node's stored seqs (default 10 000); past it the oldest are closed. */
  seqGapsPerNode?: number;
}

function insertSql<R>(t: Table<R>, orReplace = false): string {
  const names = t.columns.map((c) => c.name);
  const params = names.map((_, i) => `$${i + 1}`);
  return `INSERT${orReplace ? ' OR REPLACE' : ''} INTO ${t.name} (${names.join(', ')}) VALUES (${params.join(', ')})`;
}

export class DuckStore {
  private constructor(
    readonly path: string,
    private readonly instance: DuckDBInstance,
    private readonly writer: DuckDBConnection,
    /** A second connection, so queries never wait behind an append. */
    readonly reader: DuckDBConnection,
    readonly options: StoreOptions,
    private readonly records: RecordWriter,
    /** The schema version the file had when it was opened (0: new, or from before versions). */
    readonly openedAtVersion: number,
    /** Days past the retention, in Parquet files beside the store (none for a store in memory). */
    readonly archive: Archive | undefined,
  ) {}

  static async open(path: string, options: StoreOptions): Promise<DuckStore> {
    const inMemory = path === ':memory:';
    if (inMemory && (options.archiveDays ?? 0) > 0)
      throw new Error('store.archiveDays needs a store file, not :memory:');
    if (!inMemory) mkdirSync(dirname(path), { recursive: true });
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(path);
    } catch (err) {
      throw new Error(`cannot open the tower store ${path}: ${(err as Error).message}`);
    }
    const writer = await instance.connect();
    const reader = await instance.connect();
    try {
      const version = await openCatalog(writer);
      const records = await RecordWriter.open(writer, options.seqGapsPerNode);
      const archive = inMemory ? undefined : await Archive.open(writer, join(dirname(path), 'archive'));
      if (archive) await reader.run(`SET search_path = '${ALL_DAYS},main'`);
      return new DuckStore(path, instance, writer, reader, options, records, version, archive);
    } catch (err) {
      writer.closeSync();
      reader.closeSync();
      instance.closeSync();
      throw new Error(`cannot open the tower store ${path}: ${(err as Error).message}`);
    }
  }

  /** Which seqs of each node are stored (resends are recognised against it). */
  get stored(): Map<string, SeqRanges> {
    return this.records.stored;
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
      return this.records.append(batch);
    } catch (err) {
      await this.records.reopen();
      throw new Error(`storing a batch from ${batch.node} failed: ${(err as Error).message}`);
    }
  }

  private insert<R>(t: Table<R>, row: R, orReplace = false): Promise<void> {
    return this.exclusive(async () => {
      await this.writer.run(
        insertSql(t, orReplace),
        t.columns.map((c) => toStored(c, row)),
      );
    });
  }

  private async select<R>(t: Table<R>, rest = ''): Promise<R[]> {
    const r = await this.reader.runAndReadAll(`SELECT * FROM ${t.name} ${rest}`);
    return r.getRowObjectsJS().map((row) => rowOf(t, row));
  }

  saveNode(node: NodeRow): Promise<void> {
    return this.insert(NODES, node, true);
  }

  loadNodes(): Promise<NodeRow[]> {
    return this.select(NODES);
  }

  appendQosAudit(row: QosAuditRow): Promise<void> {
    return this.insert(QOS_AUDIT, row);
  }

  /** The newest `limit` audit rows, newest first. */
  loadQosAudit(limit: number): Promise<QosAuditRow[]> {
    return this.select(
      QOS_AUDIT,
      `ORDER BY time_ms DESC, rowid DESC LIMIT ${Math.max(1, Math.floor(limit))}`,
    );
  }

  appendEvent(e: AgentEventRow): Promise<void> {
    return this.insert(AGENT_EVENTS, e);
  }

  appendMeshStep(row: MeshStepRow): Promise<void> {
    return this.insert(MESH_STEPS, row);
  }

  appendNodeVia(row: NodeViaRow): Promise<void> {
    return this.insert(NODE_VIA, row);
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

  /**
   * Roll-ups and retention (catalog.ts); with store.archiveDays, the days past the
   * retention into the archive, a day at a time so batches are stored in between (archive.ts).
   */
  async maintain(nowMs = Date.now()): Promise<void> {
    await this.exclusive(() => maintain(this.writer, this.options, nowMs));
    const archive = this.archive;
    if (!archive) return;
    const cut = retentionCuts(this.options, nowMs);
    // Without archiveDays nothing moves or is dropped; the views still follow the files (an
    // operator may delete a day's directory).
    if (cut.archiveFrom === undefined) return this.exclusive(() => archive.refreshViews());
    await this.exclusive(() => archive.drop(cut.raw));
    const from = cut.archiveFrom;
    for (const day of await this.exclusive(() => archive.due(from)))
      await this.exclusive(() => archive.move(day, nowMs));
  }

  close(): void {
    this.records.close();
    this.writer.closeSync();
    this.reader.closeSync();
    this.instance.closeSync();
  }
}
