/**
 * The tower's records, one way to headquarters: every flow record the tower stores (once:
 * a batch a node sends again is not forwarded again) goes out as IPFIX over UDP, the form a
 * flow collector expects and the one a one-way link suits — no handshake, no reply, the
 * templates sent again every minute for a collector that starts late (RFC 7011 §8.4). Only
 * routable flows go, the ones the dashboard counts. docs/diode.md has why IPFIX.
 */
import { IpfixExporter } from '../../node/export/ipfix.js';
import type { FlowRecord } from '../../node/monitor/records.js';
import { routable } from '../api/counting.js';
import type { FlowRow, IngestBatch } from '../model.js';
import { SeqRanges } from '../store/seq-ranges.js';

export interface IpfixForwardCounters {
  /** Flow records handed to the exporter. */
  records: number;
  /** IPFIX messages (UDP datagrams) sent. */
  messages: number;
  /** Records of a batch sent again by its node, not forwarded twice. */
  resent: number;
  /** Link-local, broadcast and multicast flows, not forwarded. */
  notRoutable: number;
  lastForwardMs: number | null;
}

/** The stored row as the node's record again (its interval's end is the row's time). */
function flowRecord(r: FlowRow): FlowRecord {
  return {
    ...r,
    ipVersion: r.ipVersion === 6 ? 6 : 4,
    firstSeen: r.firstSeenMs,
    lastSeen: r.timeMs,
    ifaceKind: r.ifaceKind ?? 'host',
  };
}

export class IpfixForward {
  private readonly exporter: IpfixExporter;
  private readonly forwarded = new Map<string, SeqRanges>();
  readonly counters: IpfixForwardCounters = {
    records: 0,
    messages: 0,
    resent: 0,
    notRoutable: 0,
    lastForwardMs: null,
  };

  constructor(readonly target: { host: string; port: number }) {
    this.exporter = new IpfixExporter({ transport: 'udp', ...target });
  }

  start(): void {
    this.exporter.start();
  }

  /** A batch the tower has stored: its new, routable flows leave at once. */
  batch(b: IngestBatch): void {
    let seen = this.forwarded.get(b.node);
    if (!seen) {
      seen = new SeqRanges();
      this.forwarded.set(b.node, seen);
    }
    const fresh: FlowRecord[] = [];
    for (const r of b.flows) {
      if (seen.has(r.seq)) {
        this.counters.resent++;
        continue;
      }
      if (!routable(r)) {
        this.counters.notRoutable++;
        continue;
      }
      fresh.push(flowRecord(r));
    }
    seen.addSeqs(b.flows.map((r) => r.seq));
    if (!fresh.length) return;
    this.exporter.flows(fresh);
    this.exporter.flush();
    this.counters.records = this.exporter.counters.records;
    this.counters.messages = this.exporter.counters.messages;
    this.counters.lastForwardMs = Date.now();
  }

  stop(): void {
    this.exporter.stop();
  }
}
