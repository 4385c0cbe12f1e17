/**
 * The control plane's side of the bus: a node batch, decoded and checked, goes onto the
 * domain's stream under its message id, and resolves only once JetStream has acknowledged
 * every part of it (stored, and replicated on an R3 stream). Only then does the control
 * plane ack the node, so a node's spool empties only for batches that are durable.
 */
import type { IngestBatch } from '../model.js';
import { encodeBatch, nodeSubject } from './codec.js';
import type { BusConnection } from './connection.js';

/** Headroom in max_payload for the message's headers (the id). */
const HEADER_ROOM = 1024;
/** Between tries of a refused publish. */
const RETRY_MS = 250;

/** The bus is known to be away (its outage is logged once, by the connection). */
export class BusUnavailable extends Error {}

export interface PublishCounters {
  /** Messages acknowledged by the stream. */
  published: number;
  /** Messages the stream already held under their id (a node resending a batch). */
  duplicates: number;
  /** Batches not acknowledged in time or refused: the node keeps them and resends. */
  failures: number;
}

export class BusPublisher {
  readonly counters: PublishCounters = { published: 0, duplicates: 0, failures: 0 };

  constructor(private readonly bus: BusConnection) {}

  /**
   * Resolves when the stream holds the whole batch; throws when it does not within
   * publishTimeoutMs. Within that time a refused publish (a stream electing a new leader
   * after a server died) is tried again under the same id, so JetStream keeps it once.
   */
  async publish(batch: IngestBatch): Promise<void> {
    const subject = nodeSubject(this.bus.config.domain, batch.node);
    const deadline = Date.now() + this.bus.config.publishTimeoutMs;
    try {
      for (const m of encodeBatch(this.bus.config.domain, batch, this.bus.maxPayload - HEADER_ROOM)) {
        for (;;) {
          try {
            // Checked after, not with an expected-stream header: a division's stream sourcing
            // this one would find that header naming another stream and refuse the message.
            const ack = await this.bus.js.publish(subject, m.data, {
              msgID: m.id,
              timeout: Math.max(deadline - Date.now(), 1),
            });
            if (ack.stream !== this.bus.stream)
              throw new Error(`stored in the stream ${ack.stream}, not ${this.bus.stream}`);
            if (ack.duplicate) this.counters.duplicates++;
            else this.counters.published++;
            break;
          } catch (err) {
            if (Date.now() + RETRY_MS >= deadline) throw err;
            await new Promise((r) => setTimeout(r, RETRY_MS));
          }
        }
      }
    } catch (err) {
      this.counters.failures++;
      if (!this.bus.health.connected) throw new BusUnavailable('the bus is unreachable');
      throw new Error(`the bus did not take the batch: ${(err as Error).message}`);
    }
  }
}
