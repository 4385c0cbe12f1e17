/**
 * The writer: a durable pull consumer of the domain's stream that fills this tower's store
 * (on a division, with its brigades' batches too, their node names qualified: echelon.ts).
 * Each message is stored (the store recognises records it holds by (node, seq)) and only
 * then acknowledged to JetStream, so a writer killed anywhere in between finds the message
 * delivered again at its next start, and stores only what it had not.
 */
import { AckPolicy, type ConsumerMessages, DeliverPolicy, type JsMsg, nanos } from 'nats';
import { towerLog } from '../../shared/log.js';
import type { IngestBatch } from '../model.js';
import { ALL_FLOW_SUBJECTS, BadBusMessage, decodeBatch, domainOfSubject } from './codec.js';
import type { BusConnection } from './connection.js';
import { qualifyBatch } from './echelon.js';

const log = towerLog.child({ stage: 'bus-writer' });

export interface WriterCounters {
  /** Messages stored and acknowledged. */
  stored: number;
  /** Messages not ours (not a batch, a node other than its subject's): dropped from the consumer. */
  refused: number;
  /** Stores that failed: the message comes again. */
  retried: number;
}

/** Messages the writer may hold unacknowledged at once. */
const MAX_ACK_PENDING = 256;
/**
 * A message not acknowledged by then is delivered again: an ack lost with a server that went
 * down holds its message back this long. A store that takes longer says it is still working.
 */
const ACK_WAIT_MS = 10_000;
/** After a failed store, how long before the message comes again. */
const RETRY_MS = 1000;

/**
 * Stores one batch (of a brigade's node, on a division: `brigade`, its node names qualified);
 * resolves once it is committed, throws when it is not.
 */
export type Commit = (batch: IngestBatch, brigade: string | undefined) => Promise<unknown>;

export class BusWriter {
  readonly counters: WriterCounters = { stored: 0, refused: 0, retried: 0 };
  private messages: ConsumerMessages | undefined;
  private stopped = false;
  private done: Promise<void> = Promise.resolve();

  private constructor(
    private readonly bus: BusConnection,
    private readonly commit: Commit,
  ) {}

  /** Creates the durable consumer if it is not there and starts storing what it delivers. */
  static async start(bus: BusConnection, commit: Commit): Promise<BusWriter> {
    const name = bus.config.consumer;
    const exists = await bus.jsm.consumers.info(bus.stream, name).catch((err: Error) => {
      if (/consumer not found/i.test(err.message)) return null;
      throw err;
    });
    if (!exists)
      await bus.jsm.consumers.add(bus.stream, {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: ALL_FLOW_SUBJECTS,
        ack_wait: nanos(ACK_WAIT_MS),
        max_ack_pending: MAX_ACK_PENDING,
        max_deliver: -1,
      });
    // A consumer made before this tower became a division took its own domain's subjects only.
    else if (exists.config.filter_subject !== ALL_FLOW_SUBJECTS)
      await bus.jsm.consumers.update(bus.stream, name, { filter_subject: ALL_FLOW_SUBJECTS });
    bus.consumerName = name;
    const w = new BusWriter(bus, commit);
    w.done = w.run();
    return w;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        const consumer = await this.bus.js.consumers.get(this.bus.stream, this.bus.config.consumer);
        this.messages = await consumer.consume({ max_messages: MAX_ACK_PENDING / 2 });
        for await (const m of this.messages) await this.handle(m);
        if (!this.stopped) await new Promise((r) => setTimeout(r, RETRY_MS));
      } catch (err) {
        if (this.stopped) return;
        log.warn({ err }, 'bus writer: consumer interrupted; resuming');
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }

  private async handle(m: JsMsg): Promise<void> {
    let batch: IngestBatch;
    let brigade: string | undefined;
    try {
      batch = decodeBatch(m.subject, m.data);
      const domain = domainOfSubject(m.subject);
      if (domain !== this.bus.config.domain) {
        if (!this.bus.config.echelon?.brigades.includes(domain))
          throw new BadBusMessage(`a batch of domain ${domain}, not a brigade of this tower (bus.echelon)`);
        brigade = domain;
        batch = qualifyBatch(domain, batch);
      }
    } catch (err) {
      if (!(err instanceof BadBusMessage)) throw err;
      this.counters.refused++;
      log.warn({ subject: m.subject, streamSeq: m.seq, reason: err.message }, 'bus writer: message refused');
      m.term(err.message);
      return;
    }
    const working = setInterval(() => m.working(), ACK_WAIT_MS / 2);
    try {
      await this.commit(batch, brigade);
    } catch (err) {
      this.counters.retried++;
      log.error({ err, node: batch.node, streamSeq: m.seq }, 'bus writer: batch not stored; it comes again');
      m.nak(RETRY_MS);
      return;
    } finally {
      clearInterval(working);
    }
    m.ack();
    this.counters.stored++;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.messages?.stop();
    await this.done;
  }
}
