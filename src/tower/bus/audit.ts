/**
 * The QoS audit log on the bus (docs/bus.md): every entry — an operator's change, a refused
 * one, the services' rules, the closed loop's — goes onto the stream `QOS_<domain>` before
 * the tower keeps it, and every tower on the bus keeps in its store what the stream holds.
 * The policy in force is the newest entry not refused (QosService.load), so a standby
 * holds the leader's policy and its audit log, and a new leader starts from them.
 */
import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerMessages,
  DeliverPolicy,
  DiscardPolicy,
  type JsMsg,
  nanos,
  StorageType,
} from 'nats';
import { towerLog } from '../../shared/log.js';
import type { QosAuditRow } from '../model.js';
import type { DuckStore } from '../store/duckdb.js';
import type { BusConnection } from './connection.js';

const log = towerLog.child({ stage: 'bus-audit' });

export function auditStream(domain: string): string {
  return `QOS_${domain}`;
}

function auditSubject(domain: string): string {
  return `qos.${domain}.audit`;
}

/** The entries the stream keeps, newest; a store keeps its own copy as long as it keeps rows. */
const MAX_ENTRIES = 100_000;
const RETRY_MS = 1000;
/** A consumer of a tower gone (or cut off) this long is removed by the servers. */
const UNUSED_MS = 60_000;

/** An entry of the stream back to a row; undefined when it is not one. */
function rowOf(m: JsMsg): QosAuditRow | undefined {
  try {
    const r = m.json<QosAuditRow>();
    if (
      typeof r.timeMs === 'number' &&
      typeof r.who === 'string' &&
      typeof r.action === 'string' &&
      typeof r.version === 'number' &&
      typeof r.summary === 'string'
    )
      return r;
  } catch {
    // below
  }
  return undefined;
}

/** What tells two entries apart: when, who, what, and the version. */
function keyOf(r: Pick<QosAuditRow, 'timeMs' | 'who' | 'action' | 'version'>): string {
  return `${r.timeMs}:${r.who}:${r.action}:${r.version}`;
}

export class BusAudit {
  private messages: ConsumerMessages | undefined;
  private follower: ((row: QosAuditRow) => void) | undefined;
  /** Inserts one at a time: an entry is looked for and kept, never twice. */
  private keeping: Promise<unknown> = Promise.resolve();
  /** The entries the store holds, by keyOf. */
  private readonly held = new Set<string>();
  private done: Promise<void> = Promise.resolve();
  private stopped = false;
  /** The stream sequence of the last entry taken (a consumer made again resumes after it). */
  private lastSeq = 0;
  /** Entries from the stream this store did not hold yet, and ones not ours. */
  readonly counters = { kept: 0, refused: 0 };

  private constructor(
    private readonly bus: BusConnection,
    private readonly store: DuckStore,
    readonly stream: string,
  ) {}

  /** Sets the stream up and brings the store's audit log up to it (before the QoS service loads). */
  static async start(bus: BusConnection, store: DuckStore): Promise<BusAudit> {
    const { domain, replicas } = bus.config;
    const stream = auditStream(domain);
    const have = await bus.jsm.streams.info(stream).catch((err: Error) => {
      if (/stream not found/i.test(err.message)) return null;
      throw err;
    });
    if (!have)
      await bus.jsm.streams.add({
        name: stream,
        subjects: [auditSubject(domain)],
        storage: StorageType.File,
        num_replicas: replicas,
        max_msgs: MAX_ENTRIES,
        discard: DiscardPolicy.Old,
      });
    const audit = new BusAudit(bus, store, stream);
    const rows = await store.reader.runAndReadAll(
      'SELECT time_ms::DOUBLE AS t, who, action, version::DOUBLE AS v FROM qos_audit',
    );
    for (const r of rows.getRowObjectsJS())
      audit.held.add(
        keyOf({ timeMs: Number(r.t), who: String(r.who), action: String(r.action), version: Number(r.v) }),
      );
    const last = (await bus.jsm.streams.info(stream)).state;
    const iterator = await audit.open({ deliver_policy: DeliverPolicy.All });
    if (last.messages > 0)
      for (;;) {
        const next = await iterator.next();
        if (next.done) break;
        await audit.take(next.value);
        if (next.value.seq >= last.last_seq) break;
      }
    log.info({ stream, kept: audit.counters.kept }, 'bus: QoS audit log current');
    audit.done = audit.run(iterator);
    return audit;
  }

  /**
   * An ephemeral consumer of the stream from `from` (each start reads the whole log, so a
   * store restored from an old copy gets every entry back), gone once unused a while.
   */
  private async open(
    from: Pick<ConsumerConfig, 'deliver_policy' | 'opt_start_seq'>,
  ): Promise<AsyncIterator<JsMsg>> {
    const info = await this.bus.jsm.consumers.add(this.stream, {
      ...from,
      ack_policy: AckPolicy.None,
      inactive_threshold: nanos(UNUSED_MS),
    });
    const consumer = await this.bus.js.consumers.get(this.stream, info.name);
    this.messages = await consumer.consume();
    return this.messages[Symbol.asyncIterator]();
  }

  /** From now on, each entry the stream brings (another tower's, or this one's) goes to `follower` too. */
  follow(follower: (row: QosAuditRow) => void): void {
    this.follower = follower;
  }

  private async run(first: AsyncIterator<JsMsg>): Promise<void> {
    let iterator: AsyncIterator<JsMsg> | undefined = first;
    while (!this.stopped) {
      try {
        iterator ??= await this.open({
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: this.lastSeq + 1,
        });
        for (;;) {
          const next = await iterator.next();
          if (next.done) break;
          const row = await this.take(next.value);
          if (row) this.follower?.(row);
        }
      } catch (err) {
        if (this.stopped) return;
        log.warn({ err }, 'bus: QoS audit consumer interrupted; resuming');
      }
      iterator = undefined;
      if (!this.stopped) await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }

  private async take(m: JsMsg): Promise<QosAuditRow | undefined> {
    this.lastSeq = m.seq;
    const row = rowOf(m);
    if (!row) {
      this.counters.refused++;
      log.warn({ stream: this.stream, streamSeq: m.seq }, 'bus: a QoS audit entry not ours, skipped');
      return undefined;
    }
    if (await this.keep(row)) this.counters.kept++;
    return row;
  }

  /** Stores the entry unless the store holds it (same time, author, action and version). */
  private keep(row: QosAuditRow): Promise<boolean> {
    const step = this.keeping.then(async () => {
      const key = keyOf(row);
      if (this.held.has(key)) return false;
      await this.store.appendQosAudit(row);
      this.held.add(key);
      return true;
    });
    this.keeping = step.catch(() => undefined);
    return step;
  }

  /**
   * An entry of this tower's: on the stream (acknowledged) first, then in its store. Throws
   * when the bus does not take it in publishTimeoutMs, and nothing is kept.
   */
  async append(row: QosAuditRow): Promise<void> {
    const { domain, publishTimeoutMs } = this.bus.config;
    await this.bus.js.publish(auditSubject(domain), JSON.stringify(row), {
      msgID: keyOf(row),
      expect: { streamName: this.stream },
      timeout: publishTimeoutMs,
    });
    await this.keep(row);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.messages?.stop();
    await this.done;
  }
}
