/** Monitor records → wire records (proto/), each with its sequence number. */
import type {
  FlowRecord as WireFlow,
  HttpEvent as WireHttp,
  LinkReport as WireLink,
  RouteReport as WireRoutes,
  MonitorStats as WireStats,
} from '../../proto/index.js';
import type { RouteReport } from '../mesh/routes/watcher.js';
import type { LinkReport } from '../mesh/stage.js';
import type { FlowRecord, HttpEvent, MonitorStats } from '../monitor/records.js';

const direction = (d: 'ingress' | 'egress') => (d === 'egress' ? 'EGRESS' : 'INGRESS');

export function encodeFlow(r: FlowRecord, seq: number): WireFlow {
  return {
    seq,
    iface: r.iface,
    direction: direction(r.direction),
    ipVersion: r.ipVersion,
    src: r.src,
    dst: r.dst,
    srcPort: r.srcPort,
    dstPort: r.dstPort,
    protocol: r.protocol,
    packets: r.packets,
    bytes: r.bytes,
    tcpFlags: r.tcpFlags,
    dscp: r.dscp,
    firstSeenMs: r.firstSeen,
    lastSeenMs: r.lastSeen,
    ifaceKind: r.ifaceKind ?? '',
  };
}

export function encodeHttp(e: HttpEvent, seq: number): WireHttp {
  return {
    seq,
    timeMs: e.time,
    iface: e.iface,
    direction: direction(e.direction),
    ipVersion: e.ipVersion,
    src: e.src,
    dst: e.dst,
    srcPort: e.srcPort,
    dstPort: e.dstPort,
    response: e.kind === 'response',
    method: e.method ?? '',
    url: e.url ?? '',
    host: e.host ?? '',
    status: e.status ?? 0,
    version: e.version,
    truncated: e.truncated,
    ifaceKind: e.ifaceKind ?? '',
  };
}

export function encodeStats(s: MonitorStats, seq: number, recordsLost: number): WireStats {
  return {
    seq,
    timeMs: s.time,
    interfaces: s.interfaces,
    activeFlows: s.activeFlows,
    packetsSeen: s.packetsSeen,
    bytesSeen: s.bytesSeen,
    flowMapFull: s.flowMapFull,
    httpEvents: s.httpEvents,
    eventsDropped: s.eventsDropped,
    l7SampledOut: s.l7SampledOut,
    malformed: s.malformed,
    recordsLost,
  };
}

export function encodeLink(r: LinkReport, seq: number, timeMs: number): WireLink {
  const rtt = r.probe.rttMs;
  return {
    seq,
    timeMs,
    iface: r.iface,
    address: r.address,
    neighbour: r.neighbour,
    state: r.state,
    why: r.why,
    sinceMs: r.sinceMs,
    probesSent: r.probe.sent,
    probesAnswered: r.probe.answered,
    rttMinMs: rtt?.min ?? -1,
    rttMeanMs: rtt?.mean ?? -1,
    rttMedianMs: rtt?.median ?? -1,
    rttP95Ms: rtt?.p95 ?? -1,
    jitterMs: r.probe.jitterMs ?? -1,
    lossForwardPct: r.probe.lossForwardPct,
    lossBackwardPct: r.probe.lossBackwardPct,
    capacityBps: Math.round(r.capacityBps),
    maxCapacityBps: Math.round(r.maxCapacityBps),
    capacityFrom: r.capacityFrom,
    loadTxBps: Math.round(r.loadBps.tx),
    loadRxBps: Math.round(r.loadBps.rx),
    utilization: r.utilization,
  };
}

export function encodeRoutes(r: RouteReport, seq: number, timeMs: number): WireRoutes {
  return { seq, timeMs, source: r.source, routes: r.routes };
}
