/**
 * What the windowed queries of the API answer (queries.ts; docs/api/openapi.yaml): the
 * types the tower returns and the dashboard reads. Types only, so the page's build imports
 * nothing else.
 */
import type { IfaceKind, Locality, Position } from '../model.js';

/** GET /summary */
export interface Summary {
  conversations: number;
  /** Egress bytes: a packet crossing a node counts once. */
  bytes: number;
  flowRecords: number;
  httpRequests: number;
  httpErrors: number;
}

export interface PieSlice {
  /** An address, or "other" for the rest past the top ones. */
  ip: string;
  count: number;
}
/** GET /pies: how often each address is an end of a conversation, per locality and overall. */
export type Pies = Record<Locality | 'all', PieSlice[]>;

/** GET /talkers */
export interface Talker {
  src: string;
  dst: string;
  locality: Locality;
  bytes: number;
  packets: number;
  conversations: number;
}

/** GET /throughput: per series (a node, or an interface of the chosen node), [time, bit/s]. */
export interface Throughput {
  stepMs: number;
  series: Record<string, [number, number][]>;
}

/**
 * GET /flows: one conversation (a 5-tuple) at one DSCP value, as its records of the window
 * add up — a conversation whose packets were marked two ways is two entries.
 */
export interface Conversation {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  protocol: number;
  locality: Locality;
  /** The DSCP of the records' packets (each record carries its last packet's). */
  dscp: number;
  /** OR of the TCP flags byte over the records: FIN 1, SYN 2, RST 4, PSH 8, ACK 16, URG 32, ECE 64, CWR 128. */
  tcpFlags: number;
  /** Egress bytes and packets, as the other views count them. */
  bytes: number;
  packets: number;
  /** Flow records, every interface and direction they were seen on. */
  records: number;
  firstSeen: number;
  lastSeen: number;
}

/** GET /http: a request with the status of the response that followed on its connection. */
export interface HttpRequest {
  time: number;
  node: string;
  iface: string;
  /** What is behind iface: a container's or VM's switch port, or another interface; null from older nodes. */
  ifaceKind: IfaceKind | null;
  src: string;
  dst: string;
  dstPort: number;
  method: string;
  url: string;
  host: string;
  truncated: boolean;
  locality: Locality;
  status: number | null;
  latencyMs: number | null;
}

/** GET /http/status: responses per code, each response once. */
export type StatusCounts = { status: number; count: number }[];

/** Where an address is: the node whose subnets hold it, or a configured place. */
export interface Place {
  node: string | null;
  position: Position | null;
  label: string | null;
}

export interface Pair {
  src: string;
  dst: string;
  locality: Locality;
  conversations: number;
  bytes: number;
  srcPlace: Place;
  dstPlace: Place;
}

/** GET /map */
export interface MapData {
  nodes: { name: string; position: Position | null; connected: boolean }[];
  pairs: Pair[];
}
