/**
 * Wire → rows: a node's RecordBatch (generated proto types) becomes an IngestBatch of typed
 * rows, each end of every flow placed by the locality map. Bad records are refused here,
 * with the reason, before anything is stored. A record time later than the node's clock can
 * be (the tower's, plus the node's measured skew, within a limit) is clamped to it, so no
 * record escapes retention by claiming to come from the future.
 */
import { isIP } from 'node:net';
import { IFACE_KINDS, type IfaceKind } from '../../node/monitor/records.js';
import type { RecordBatch__Output } from '../../proto/index.js';
import type { IngestBatch } from '../model.js';
import type { LocalityMap } from './locality.js';
import { parseCidr } from './prefix.js';

/** More than this in one batch is a misbehaving node, not telemetry. */
export const MAX_BATCH_RECORDS = 100_000;
const MAX_TEXT = 2048;

export class BadBatch extends Error {}

function text(value: string, what: string): string {
  if (value.length > MAX_TEXT)
    throw new BadBatch(`${what} is ${value.length} characters, more than ${MAX_TEXT}`);
  return value;
}

function address(value: string, what: string): string {
  if (!isIP(value)) throw new BadBatch(`${what} "${value.slice(0, 60)}" is not an IP address`);
  return value;
}

/** What is behind the interface; null from a node too old to say. */
function ifaceKind(value: string): IfaceKind | null {
  if (value === '') return null;
  if ((IFACE_KINDS as readonly string[]).includes(value)) return value as IfaceKind;
  throw new BadBatch(`interface kind "${value.slice(0, 20)}" is not ${IFACE_KINDS.join(', ')}`);
}

function linkState(value: string): 'up' | 'degraded' | 'down' {
  if (value === 'up' || value === 'degraded' || value === 'down') return value;
  throw new BadBatch(`link state "${value.slice(0, 20)}" is not up, degraded or down`);
}

function finite(value: number, what: string): number {
  if (!Number.isFinite(value) || value < 0) throw new BadBatch(`${what} ${value} is not a number >= 0`);
  return value;
}

function percent(value: number, what: string): number {
  if (finite(value, what) > 100) throw new BadBatch(`${what} ${value} % is above 100`);
  return value;
}

function cidr(value: string): string {
  try {
    return parseCidr(value).text;
  } catch (err) {
    throw new BadBatch(`route destination: ${(err as Error).message}`);
  }
}

/** A round-trip time; the wire's -1 means none was measured. */
function millis(value: number): number | null {
  return value === -1 ? null : finite(value, 'a round-trip time');
}

export interface DecodeOptions {
  /** The latest time a record may have (ms since the epoch); later ones are clamped to it. */
  latestMs?: number;
  /** Counts the times clamped. */
  clamped?: { times: number };
}

function seqIn(batch: RecordBatch__Output, seq: number): number {
  if (seq < batch.firstSeq || seq > batch.lastSeq)
    throw new BadBatch(`record seq ${seq} is outside the batch's ${batch.firstSeq}..${batch.lastSeq}`);
  return seq;
}

export function decodeBatch(
  node: string,
  batch: RecordBatch__Output,
  places: LocalityMap,
  options: DecodeOptions = {},
): IngestBatch {
  const total =
    batch.flows.length +
    batch.http.length +
    batch.stats.length +
    batch.links.length +
    batch.routes.reduce((n, r) => n + 1 + r.routes.length, 0);
  if (total > MAX_BATCH_RECORDS)
    throw new BadBatch(`batch of ${total} records, more than ${MAX_BATCH_RECORDS}`);
  if (batch.lastSeq < batch.firstSeq)
    throw new BadBatch(`batch seq range ${batch.firstSeq}..${batch.lastSeq} is reversed`);
  if (batch.lastSeq > Number.MAX_SAFE_INTEGER)
    throw new BadBatch(`batch seq ${batch.lastSeq} is beyond 2^53`);
  const latest = options.latestMs ?? Number.POSITIVE_INFINITY;
  const time = (ms: number): number => {
    if (ms <= latest) return ms;
    if (options.clamped) options.clamped.times++;
    return latest;
  };
  return {
    node,
    firstSeq: batch.firstSeq,
    lastSeq: batch.lastSeq,
    flows: batch.flows.map((f) => {
      const src = address(f.src, 'flow source');
      const dst = address(f.dst, 'flow destination');
      const where = places.classify(src, dst);
      const timeMs = time(f.lastSeenMs);
      return {
        node,
        seq: seqIn(batch, f.seq),
        timeMs,
        iface: text(f.iface, 'interface name'),
        ifaceKind: ifaceKind(f.ifaceKind),
        direction: f.direction === 'EGRESS' ? 'egress' : 'ingress',
        ipVersion: f.ipVersion,
        src,
        dst,
        srcPort: f.srcPort,
        dstPort: f.dstPort,
        protocol: f.protocol,
        packets: f.packets,
        bytes: f.bytes,
        tcpFlags: f.tcpFlags,
        dscp: f.dscp,
        firstSeenMs: Math.min(f.firstSeenMs, timeMs),
        locality: where.locality,
        srcNode: where.srcNode,
        dstNode: where.dstNode,
      };
    }),
    http: batch.http.map((h) => {
      const src = address(h.src, 'HTTP source');
      const dst = address(h.dst, 'HTTP destination');
      return {
        node,
        seq: seqIn(batch, h.seq),
        timeMs: time(h.timeMs),
        iface: text(h.iface, 'interface name'),
        ifaceKind: ifaceKind(h.ifaceKind),
        direction: h.direction === 'EGRESS' ? 'egress' : 'ingress',
        ipVersion: h.ipVersion,
        src,
        dst,
        srcPort: h.srcPort,
        dstPort: h.dstPort,
        response: h.response,
        method: text(h.method, 'HTTP method'),
        url: text(h.url, 'URL'),
        host: text(h.host, 'Host'),
        status: h.status,
        version: text(h.version, 'HTTP version'),
        truncated: h.truncated,
        locality: places.classify(src, dst).locality,
      };
    }),
    stats: batch.stats.map((s) => ({
      node,
      seq: seqIn(batch, s.seq),
      timeMs: time(s.timeMs),
      activeFlows: s.activeFlows,
      packetsSeen: s.packetsSeen,
      bytesSeen: s.bytesSeen,
      flowMapFull: s.flowMapFull,
      httpEvents: s.httpEvents,
      eventsDropped: s.eventsDropped,
      malformed: s.malformed,
      recordsLost: s.recordsLost,
      l7SampledOut: s.l7SampledOut,
    })),
    links: batch.links.map((l) => ({
      node,
      seq: seqIn(batch, l.seq),
      timeMs: time(l.timeMs),
      iface: text(l.iface, 'interface name'),
      address: address(l.address, 'link address'),
      neighbour: address(l.neighbour, 'link neighbour'),
      state: linkState(l.state),
      why: l.why.slice(0, 8).map((w) => text(w, 'link state reason')),
      sinceMs: time(l.sinceMs),
      probesSent: l.probesSent,
      probesAnswered: Math.min(l.probesAnswered, l.probesSent),
      rttMinMs: millis(l.rttMinMs),
      rttMeanMs: millis(l.rttMeanMs),
      rttMedianMs: millis(l.rttMedianMs),
      rttP95Ms: millis(l.rttP95Ms),
      jitterMs: millis(l.jitterMs),
      lossForwardPct: percent(l.lossForwardPct, 'forward loss'),
      lossBackwardPct: percent(l.lossBackwardPct, 'backward loss'),
      capacityBps: l.capacityBps,
      maxCapacityBps: l.maxCapacityBps,
      capacityFrom: l.capacityFrom === 'dlep' ? 'dlep' : 'config',
      loadTxBps: l.loadTxBps,
      loadRxBps: l.loadRxBps,
      utilization: finite(l.utilization, 'utilization'),
    })),
    routes: batch.routes.map((r) => {
      if (r.source !== 'babel' && r.source !== 'kernel')
        throw new BadBatch(`route source "${r.source.slice(0, 20)}" is not babel or kernel`);
      return {
        node,
        seq: seqIn(batch, r.seq),
        timeMs: time(r.timeMs),
        source: r.source,
        routes: r.routes.map((x) => ({
          prefix: cidr(x.prefix),
          via: x.via === '' ? '' : address(x.via, 'route next hop'),
          iface: text(x.iface, 'interface name'),
          metric: x.metric,
          sinceMs: time(x.sinceMs),
        })),
      };
    }),
  };
}
