/**
 * The node's telemetry: what the monitor stage emits and every later stage (export,
 * tower ingest, store) carries. Times are milliseconds since the epoch.
 */

export type Direction = 'ingress' | 'egress';

/**
 * What is behind the interface a record was seen on: a container's veth or a VM's tap (the
 * agent's switch ports), or any other interface of the node (uplinks, mesh links, `watch`).
 */
export type IfaceKind = 'container' | 'vm' | 'host';
export const IFACE_KINDS: readonly IfaceKind[] = ['container', 'vm', 'host'];

/** The identity of a flow as the kernel keys it. */
export interface FlowKey {
  iface: string;
  direction: Direction;
  ipVersion: 4 | 6;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  /** IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6). */
  protocol: number;
}

/** Traffic of one flow during one export interval (a delta, not a running total). */
export interface FlowRecord extends FlowKey {
  node: string;
  ifaceKind?: IfaceKind;
  packets: number;
  bytes: number;
  /** OR of the TCP flags seen since the flow began. */
  tcpFlags: number;
  dscp: number;
  firstSeen: number;
  lastSeen: number;
}

export interface HttpEvent extends FlowKey {
  node: string;
  ifaceKind?: IfaceKind;
  time: number;
  kind: 'request' | 'response';
  /** Requests: method and URL (path as sent), Host header when it was in the same packet. */
  method?: string;
  url?: string;
  host?: string;
  /** Responses: the status code. */
  status?: number;
  version: string;
  /** The line was longer than the kernel's copy and was cut. */
  truncated: boolean;
}

/** The monitor's own health, once per export interval. */
export interface MonitorStats {
  node: string;
  time: number;
  interfaces: string[];
  activeFlows: number;
  flowsExpired: number;
  /** Cumulative kernel counters. */
  packetsSeen: number;
  bytesSeen: number;
  flowMapFull: number;
  httpEvents: number;
  eventsDropped: number;
  l7SampledOut: number;
  malformed: number;
  nonIp: number;
  /** Wall time of the last read of the flow table, ms. */
  readMs: number;
}

export const PROTOCOL_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmp6' };
