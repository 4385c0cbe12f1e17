/**
 * IPFIX (RFC 7011) export of the monitor's records to any flow collector, over UDP or TCP
 * (`tacmesh node run --ipfix udp://host:port|tcp://host:port`), beside the tower link.
 *
 * Templates (observation domain 1):
 *   256 flows over IPv4, 257 flows over IPv6 — IANA elements: source/destination address
 *       (8/12, 27/28), ports (7, 11), protocolIdentifier (4), tcpControlBits (6),
 *       ipClassOfServiceByte (5, DSCP << 2), octetDeltaCount (1), packetDeltaCount (2),
 *       flowStartMilliseconds (152), flowEndMilliseconds (153), flowDirection (61:
 *       0 ingress, 1 egress). One data record per flow per export interval: the counts are
 *       that interval's (deltas), as the tower gets them.
 *   258 HTTP request/response lines — source/destination IPv4/IPv6 as above is not fixed
 *       width, so addresses go as IANA sourceIPv6Address/destinationIPv6Address (27/28,
 *       IPv4 mapped ::ffff:a.b.c.d), ports, observationTimeMilliseconds (323), and
 *       enterprise-specific elements under private enterprise number 32473 — the number
 *       IANA reserves for documentation (RFC 5612), a PLACEHOLDER to replace with the
 *       project's own PEN once assigned:
 *         1 httpMethod (string, variable length)    2 httpUrl (string, variable length)
 *         3 httpHost (string, variable length)      4 httpStatus (unsigned16, 0 on requests)
 *         5 httpIsResponse (unsigned8: 0 request, 1 response)
 *
 * UDP: every message fits one datagram (≤ 1400 bytes); templates are sent first and again
 * every TEMPLATE_EVERY_MS (RFC 7011 §8.4). TCP: templates at the start of every
 * connection; a lost connection is retried with backoff, records meanwhile are dropped and
 * counted (the tower link, not IPFIX, is the lossless path).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, isIPv4, type Socket } from 'node:net';
import { nodeLog as log } from '../../shared/log.js';
import type { MonitorSink } from '../monitor/monitor.js';
import type { FlowRecord, HttpEvent, MonitorStats } from '../monitor/records.js';

export const PEN = 32473;
const VERSION = 10;
const DOMAIN = 1;
const MAX_MESSAGE = 1400;
const TEMPLATE_EVERY_MS = 60_000;
const T_FLOW4 = 256;
const T_FLOW6 = 257;
const T_HTTP = 258;
const VARLEN = 0xffff;

/** [element id, length, enterprise number?] */
type Field = [number, number, number?];
const flowFields = (addrId: [number, number], addrLen: number): Field[] => [
  [addrId[0], addrLen],
  [addrId[1], addrLen],
  [7, 2],
  [11, 2],
  [4, 1],
  [6, 2],
  [5, 1],
  [1, 8],
  [2, 8],
  [152, 8],
  [153, 8],
  [61, 1],
];
export const TEMPLATES: Record<number, Field[]> = {
  [T_FLOW4]: flowFields([8, 12], 4),
  [T_FLOW6]: flowFields([27, 28], 16),
  [T_HTTP]: [
    [27, 16],
    [28, 16],
    [7, 2],
    [11, 2],
    [323, 8],
    [1, VARLEN, PEN],
    [2, VARLEN, PEN],
    [3, VARLEN, PEN],
    [4, 2, PEN],
    [5, 1, PEN],
  ],
};

/** A growable byte writer. */
class Writer {
  private buf = Buffer.alloc(2048);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number): void {
    this.room(1);
    this.buf.writeUInt8(v & 0xff, this.length++);
  }
  u16(v: number): void {
    this.room(2);
    this.buf.writeUInt16BE(v & 0xffff, this.length);
    this.length += 2;
  }
  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.length);
    this.length += 4;
  }
  u64(v: number): void {
    this.room(8);
    this.buf.writeBigUInt64BE(BigInt(Math.max(0, Math.trunc(v))), this.length);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  /** RFC 7011 §7: variable length, 1-byte length below 255, else 255 and 2 bytes. */
  varlen(s: string): void {
    const b = Buffer.from(s, 'utf8').subarray(0, 0xfffe);
    if (b.length < 255) this.u8(b.length);
    else {
      this.u8(255);
      this.u16(b.length);
    }
    this.bytes(b);
  }
  get data(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function ipBytes(ip: string, width: 4 | 16): Buffer {
  if (isIPv4(ip)) {
    const v4 = Buffer.from(ip.split('.').map(Number));
    return width === 4 ? v4 : Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff]), v4]);
  }
  const [head = '', tail = ''] = ip.split('::');
  const groups = (s: string) => (s ? s.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  for (const [i, g] of all.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return out;
}

export function templateSet(): Buffer {
  const w = new Writer();
  w.u16(2);
  w.u16(0);
  for (const [id, fields] of Object.entries(TEMPLATES)) {
    w.u16(Number(id));
    w.u16(fields.length);
    for (const [ie, len, pen] of fields) {
      w.u16(pen ? ie | 0x8000 : ie);
      w.u16(len);
      if (pen) w.u32(pen);
    }
  }
  const b = w.data;
  b.writeUInt16BE(b.length, 2);
  return Buffer.from(b);
}

export function flowData(r: FlowRecord): { template: number; data: Buffer } {
  const width = r.ipVersion === 6 ? 16 : 4;
  const w = new Writer();
  w.bytes(ipBytes(r.src, width));
  w.bytes(ipBytes(r.dst, width));
  w.u16(r.srcPort);
  w.u16(r.dstPort);
  w.u8(r.protocol);
  w.u16(r.tcpFlags);
  w.u8(r.dscp << 2);
  w.u64(r.bytes);
  w.u64(r.packets);
  w.u64(r.firstSeen);
  w.u64(r.lastSeen);
  w.u8(r.direction === 'egress' ? 1 : 0);
  return { template: width === 4 ? T_FLOW4 : T_FLOW6, data: Buffer.from(w.data) };
}

export function httpData(e: HttpEvent): { template: number; data: Buffer } {
  const w = new Writer();
  w.bytes(ipBytes(e.src, 16));
  w.bytes(ipBytes(e.dst, 16));
  w.u16(e.srcPort);
  w.u16(e.dstPort);
  w.u64(e.time);
  w.varlen(e.method ?? '');
  w.varlen(e.url ?? '');
  w.varlen(e.host ?? '');
  w.u16(e.status ?? 0);
  w.u8(e.kind === 'response' ? 1 : 0);
  return { template: T_HTTP, data: Buffer.from(w.data) };
}

/** Packs data records into messages of at most `max` bytes: sets grouped by template. */
export function messages(
  records: { template: number; data: Buffer }[],
  header: { sequence: number; exportTimeS: number },
  prefix: Buffer | undefined,
  max = MAX_MESSAGE,
): { messages: Buffer[]; records: number } {
  const out: Buffer[] = [];
  let sequence = header.sequence;
  let parts: Buffer[] = prefix ? [prefix] : [];
  let size = 16 + (prefix?.length ?? 0);
  let set: Buffer[] = [];
  let setTemplate = -1;
  let setSize = 0;
  let inMessage = 0;
  const closeSet = () => {
    if (!set.length) return;
    const h = Buffer.alloc(4);
    h.writeUInt16BE(setTemplate, 0);
    h.writeUInt16BE(setSize + 4, 2);
    parts.push(h, ...set);
    set = [];
    setSize = 0;
  };
  const closeMessage = () => {
    closeSet();
    if (parts.length === 0) return;
    const h = Buffer.alloc(16);
    const body = Buffer.concat(parts);
    h.writeUInt16BE(VERSION, 0);
    h.writeUInt16BE(16 + body.length, 2);
    h.writeUInt32BE(header.exportTimeS >>> 0, 4);
    h.writeUInt32BE(sequence >>> 0, 8);
    h.writeUInt32BE(DOMAIN, 12);
    out.push(Buffer.concat([h, body]));
    sequence += inMessage;
    parts = [];
    size = 16;
    inMessage = 0;
  };
  for (const r of records) {
    const extra = r.data.length + (r.template === setTemplate && set.length ? 0 : 4);
    if (size + extra > max && (parts.length || set.length)) closeMessage();
    if (r.template !== setTemplate) closeSet();
    if (!set.length) {
      setTemplate = r.template;
      size += 4;
    }
    set.push(r.data);
    setSize += r.data.length;
    size += r.data.length;
    inMessage++;
  }
  closeMessage();
  return { messages: out, records: sequence - header.sequence };
}

/** Where to send: `udp://host:port` or `tcp://host:port`. */
export function parseIpfixTarget(v: string): { transport: 'udp' | 'tcp'; host: string; port: number } {
  const m = /^(udp|tcp):\/\/(\[[0-9a-fA-F:]+\]|[^:/\s]+):(\d{1,5})$/.exec(v);
  if (!m || Number(m[3]) > 65535)
    throw new Error(`"${v}" is not an IPFIX collector: give udp://host:port or tcp://host:port`);
  return {
    transport: m[1] as 'udp' | 'tcp',
    host: (m[2] as string).replace(/^\[|\]$/g, ''),
    port: Number(m[3]),
  };
}

export class IpfixExporter implements MonitorSink {
  private sequence = 0;
  private udp: UdpSocket | undefined;
  private tcp: Socket | undefined;
  private tcpReady = false;
  private templatesSentAt = 0;
  private pending: { template: number; data: Buffer }[] = [];
  private retry: NodeJS.Timeout | undefined;
  private backoff = 500;
  private stopped = false;
  readonly counters = { records: 0, messages: 0, dropped: 0, errors: 0 };

  constructor(private readonly target: { transport: 'udp' | 'tcp'; host: string; port: number }) {}

  start(): void {
    if (this.target.transport === 'udp') {
      this.udp = createSocket(isIPv4(this.target.host) || !this.target.host.includes(':') ? 'udp4' : 'udp6');
      this.udp.on('error', (err) => {
        this.counters.errors++;
        log.warn({ err }, 'IPFIX: send failed');
      });
    } else this.connect();
    log.info(this.target, 'IPFIX export');
  }

  private connect(): void {
    if (this.stopped) return;
    const socket = connect(this.target.port, this.target.host);
    this.tcp = socket;
    socket.setNoDelay(true);
    socket.on('connect', () => {
      this.tcpReady = true;
      this.backoff = 500;
      this.templatesSentAt = 0;
    });
    socket.on('error', (err) => {
      this.counters.errors++;
      log.warn({ err }, 'IPFIX: collector connection failed');
    });
    socket.on('close', () => {
      this.tcpReady = false;
      if (this.stopped) return;
      this.retry = setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10_000);
    });
  }

  flows(records: FlowRecord[]): void {
    for (const r of records) this.pending.push(flowData(r));
  }

  http(event: HttpEvent): void {
    this.pending.push(httpData(event));
  }

  /** The end of an export interval: what gathered goes out. */
  stats(_stats: MonitorStats): void {
    this.flush();
  }

  flush(): void {
    const records = this.pending;
    this.pending = [];
    const tcp = this.target.transport === 'tcp';
    if (tcp && !this.tcpReady) {
      this.counters.dropped += records.length;
      return;
    }
    const now = Date.now();
    const withTemplates = tcp ? this.templatesSentAt === 0 : now - this.templatesSentAt >= TEMPLATE_EVERY_MS;
    if (!records.length && !withTemplates) return;
    const out = messages(
      records,
      { sequence: this.sequence, exportTimeS: Math.floor(now / 1000) },
      withTemplates ? templateSet() : undefined,
    );
    if (withTemplates) this.templatesSentAt = now;
    this.sequence = (this.sequence + out.records) >>> 0;
    this.counters.records += records.length;
    this.counters.messages += out.messages.length;
    for (const m of out.messages) {
      if (this.udp) this.udp.send(m, this.target.port, this.target.host);
      else this.tcp?.write(m);
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    this.flush();
    this.udp?.close();
    this.tcp?.end();
  }
}

/** Hands the monitor's output to several sinks: the tower link and the IPFIX exporter. */
export function teeSink(...sinks: MonitorSink[]): MonitorSink {
  return {
    flows: (r) => {
      for (const s of sinks) s.flows(r);
    },
    http: (e) => {
      for (const s of sinks) s.http(e);
    },
    stats: (st) => {
      for (const s of sinks) s.stats(st);
    },
  };
}
