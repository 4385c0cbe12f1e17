/**
 * DLEP wire format (RFC 8175 §11–13): signals on UDP ("DLEP", type, length, data items),
 * messages on the TCP session (type, length, data items), data items as type-length-value,
 * all big-endian. Only what a router needs to learn its radio neighbours' link metrics is
 * typed; other data items are kept raw, as the RFC asks of unknown ones. Every length is
 * checked against what is there: a hostile peer gets a DlepDecodeError, never a crash.
 */

export const DLEP_PORT = 854;
/** IANA's link-local discovery group. */
export const DLEP_DISCOVERY_GROUP = '224.0.0.117';

export const Signal = { PeerDiscovery: 1, PeerOffer: 2 } as const;

export const Message = {
  SessionInitialization: 1,
  SessionInitializationResponse: 2,
  SessionUpdate: 3,
  SessionUpdateResponse: 4,
  SessionTermination: 5,
  SessionTerminationResponse: 6,
  DestinationUp: 7,
  DestinationUpResponse: 8,
  DestinationAnnounce: 9,
  DestinationAnnounceResponse: 10,
  DestinationDown: 11,
  DestinationDownResponse: 12,
  DestinationUpdate: 13,
  LinkCharacteristicsRequest: 14,
  LinkCharacteristicsResponse: 15,
  Heartbeat: 16,
} as const;

export const Item = {
  Status: 1,
  Ipv4ConnectionPoint: 2,
  Ipv6ConnectionPoint: 3,
  PeerType: 4,
  HeartbeatInterval: 5,
  ExtensionsSupported: 6,
  MacAddress: 7,
  Ipv4Address: 8,
  Ipv6Address: 9,
  Ipv4AttachedSubnet: 10,
  Ipv6AttachedSubnet: 11,
  MaxDataRateReceive: 12,
  MaxDataRateTransmit: 13,
  CurrentDataRateReceive: 14,
  CurrentDataRateTransmit: 15,
  Latency: 16,
  Resources: 17,
  RelativeLinkQualityReceive: 18,
  RelativeLinkQualityTransmit: 19,
  Mtu: 20,
} as const;

export const Status = {
  Success: 0,
  NotInterested: 1,
  RequestDenied: 2,
  InconsistentData: 3,
  UnknownMessage: 128,
  UnexpectedMessage: 129,
  InvalidData: 130,
  InvalidDestination: 131,
  TimedOut: 132,
  ShuttingDown: 255,
} as const;

export interface DataItem {
  type: number;
  value: Buffer;
}

export interface DlepMessage {
  type: number;
  items: DataItem[];
}

export class DlepDecodeError extends Error {
  override name = 'DlepDecodeError';
}

const SIGNAL_PREFIX = Buffer.from('DLEP');

function encodeItems(items: DataItem[]): Buffer {
  return Buffer.concat(
    items.map((i) => {
      const head = Buffer.alloc(4);
      head.writeUInt16BE(i.type, 0);
      head.writeUInt16BE(i.value.length, 2);
      return Buffer.concat([head, i.value]);
    }),
  );
}

function decodeItems(buf: Buffer): DataItem[] {
  const items: DataItem[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf.length - at < 4) throw new DlepDecodeError('a data item header cut short');
    const type = buf.readUInt16BE(at);
    const length = buf.readUInt16BE(at + 2);
    if (at + 4 + length > buf.length)
      throw new DlepDecodeError(`data item ${type} says ${length} bytes, ${buf.length - at - 4} are left`);
    items.push({ type, value: buf.subarray(at + 4, at + 4 + length) });
    at += 4 + length;
  }
  return items;
}

function withHeader(type: number, body: Buffer): Buffer {
  if (body.length > 0xffff)
    throw new RangeError(`a DLEP message carries at most 65535 bytes, not ${body.length}`);
  const head = Buffer.alloc(4);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([head, body]);
}

export function encodeMessage(m: DlepMessage): Buffer {
  return withHeader(m.type, encodeItems(m.items));
}

export function encodeSignal(m: DlepMessage): Buffer {
  return Buffer.concat([SIGNAL_PREFIX, encodeMessage(m)]);
}

export function decodeSignal(buf: Buffer): DlepMessage {
  if (buf.length < 8 || !buf.subarray(0, 4).equals(SIGNAL_PREFIX))
    throw new DlepDecodeError('not a DLEP signal (no "DLEP" prefix)');
  const length = buf.readUInt16BE(6);
  if (buf.length !== 8 + length)
    throw new DlepDecodeError(`signal says ${length} bytes, has ${buf.length - 8}`);
  return { type: buf.readUInt16BE(4), items: decodeItems(buf.subarray(8)) };
}

/**
 * Splits a TCP byte stream into messages: feed it what arrives, take the whole messages.
 * A message is at most 4 + 65535 bytes, so what it holds is bounded.
 */
export class MessageReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): DlepMessage[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: DlepMessage[] = [];
    while (this.pending.length >= 4) {
      const length = this.pending.readUInt16BE(2);
      if (this.pending.length < 4 + length) break;
      const type = this.pending.readUInt16BE(0);
      const items = decodeItems(this.pending.subarray(4, 4 + length));
      this.pending = this.pending.subarray(4 + length);
      out.push({ type, items });
    }
    return out;
  }
}

// Typed data items: the ones a router acts on.

export const item = {
  u8: (type: number, v: number): DataItem => ({ type, value: Buffer.from([v]) }),
  u32: (type: number, v: number): DataItem => {
    const value = Buffer.alloc(4);
    value.writeUInt32BE(v);
    return { type, value };
  },
  u64: (type: number, v: bigint): DataItem => {
    const value = Buffer.alloc(8);
    value.writeBigUInt64BE(v);
    return { type, value };
  },
  status: (code: number, text = ''): DataItem => ({
    type: Item.Status,
    value: Buffer.concat([Buffer.from([code]), Buffer.from(text, 'utf8')]),
  }),
  peerType: (description: string): DataItem => ({
    type: Item.PeerType,
    value: Buffer.concat([Buffer.from([0]), Buffer.from(description, 'utf8')]),
  }),
  mac: (mac: string): DataItem => ({ type: Item.MacAddress, value: parseMac(mac) }),
  ipv4: (address: string, add = true): DataItem => ({
    type: Item.Ipv4Address,
    value: Buffer.from([add ? 1 : 0, ...address.split('.').map(Number)]),
  }),
  connectionPoint: (address: string, port: number): DataItem => {
    const value = Buffer.alloc(7);
    value[0] = 0; // no TLS
    Buffer.from(address.split('.').map(Number)).copy(value, 1);
    value.writeUInt16BE(port, 5);
    return { type: Item.Ipv4ConnectionPoint, value };
  },
};

export function parseMac(mac: string): Buffer {
  const bytes = mac.split(':').map((h) => Number.parseInt(h, 16));
  if ((bytes.length !== 6 && bytes.length !== 8) || bytes.some((b) => !(b >= 0 && b <= 255)))
    throw new RangeError(`not a MAC address: ${mac}`);
  return Buffer.from(bytes);
}

export function formatMac(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

const find = (m: DlepMessage, type: number) => m.items.find((i) => i.type === type);

function sized(i: DataItem | undefined, bytes: number, what: string): Buffer | undefined {
  if (!i) return undefined;
  if (i.value.length !== bytes)
    throw new DlepDecodeError(`${what} has ${i.value.length} bytes, not ${bytes}`);
  return i.value;
}

/** The link metrics a modem reports for a destination (or as the session's defaults). */
export interface LinkMetrics {
  maxRxBps?: bigint;
  maxTxBps?: bigint;
  currentRxBps?: bigint;
  currentTxBps?: bigint;
  latencyUs?: bigint;
  resourcesPct?: number;
  rlqRx?: number;
  rlqTx?: number;
  mtu?: number;
}

export function metricsOf(m: DlepMessage): LinkMetrics {
  const u64 = (type: number, what: string) => sized(find(m, type), 8, what)?.readBigUInt64BE();
  const pct = (type: number, what: string) => {
    const v = sized(find(m, type), 1, what)?.[0];
    if (v !== undefined && v > 100) throw new DlepDecodeError(`${what} is ${v}, above 100`);
    return v;
  };
  const out: LinkMetrics = {
    maxRxBps: u64(Item.MaxDataRateReceive, 'Maximum Data Rate (Receive)'),
    maxTxBps: u64(Item.MaxDataRateTransmit, 'Maximum Data Rate (Transmit)'),
    currentRxBps: u64(Item.CurrentDataRateReceive, 'Current Data Rate (Receive)'),
    currentTxBps: u64(Item.CurrentDataRateTransmit, 'Current Data Rate (Transmit)'),
    latencyUs: u64(Item.Latency, 'Latency'),
    resourcesPct: pct(Item.Resources, 'Resources'),
    rlqRx: pct(Item.RelativeLinkQualityReceive, 'Relative Link Quality (Receive)'),
    rlqTx: pct(Item.RelativeLinkQualityTransmit, 'Relative Link Quality (Transmit)'),
    mtu: sized(find(m, Item.Mtu), 2, 'MTU')?.readUInt16BE(),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as LinkMetrics;
}

export function metricItems(x: LinkMetrics): DataItem[] {
  const items: DataItem[] = [];
  if (x.maxRxBps !== undefined) items.push(item.u64(Item.MaxDataRateReceive, x.maxRxBps));
  if (x.maxTxBps !== undefined) items.push(item.u64(Item.MaxDataRateTransmit, x.maxTxBps));
  if (x.currentRxBps !== undefined) items.push(item.u64(Item.CurrentDataRateReceive, x.currentRxBps));
  if (x.currentTxBps !== undefined) items.push(item.u64(Item.CurrentDataRateTransmit, x.currentTxBps));
  if (x.latencyUs !== undefined) items.push(item.u64(Item.Latency, x.latencyUs));
  if (x.resourcesPct !== undefined) items.push(item.u8(Item.Resources, x.resourcesPct));
  if (x.rlqRx !== undefined) items.push(item.u8(Item.RelativeLinkQualityReceive, x.rlqRx));
  if (x.rlqTx !== undefined) items.push(item.u8(Item.RelativeLinkQualityTransmit, x.rlqTx));
  if (x.mtu !== undefined) {
    const value = Buffer.alloc(2);
    value.writeUInt16BE(x.mtu);
    items.push({ type: Item.Mtu, value });
  }
  return items;
}

export function macOf(m: DlepMessage): string | undefined {
  const v = find(m, Item.MacAddress)?.value;
  if (!v) return undefined;
  if (v.length !== 6 && v.length !== 8) throw new DlepDecodeError(`MAC Address has ${v.length} bytes`);
  return formatMac(v);
}

export function statusOf(m: DlepMessage): { code: number; text: string } | undefined {
  const v = find(m, Item.Status)?.value;
  if (!v) return undefined;
  if (v.length < 1) throw new DlepDecodeError('Status without a code');
  return { code: v[0] ?? 0, text: v.subarray(1).toString('utf8') };
}

export function heartbeatOf(m: DlepMessage): number | undefined {
  return sized(find(m, Item.HeartbeatInterval), 4, 'Heartbeat Interval')?.readUInt32BE();
}

export function connectionPointOf(m: DlepMessage): { address: string; port: number } | undefined {
  const v = find(m, Item.Ipv4ConnectionPoint)?.value;
  if (!v) return undefined;
  if (v.length !== 5 && v.length !== 7)
    throw new DlepDecodeError(`IPv4 Connection Point has ${v.length} bytes`);
  return { address: [...v.subarray(1, 5)].join('.'), port: v.length === 7 ? v.readUInt16BE(5) : DLEP_PORT };
}

export function ipv4AddressesOf(m: DlepMessage): string[] {
  return m.items
    .filter((i) => i.type === Item.Ipv4Address)
    .map((i) => {
      if (i.value.length !== 5) throw new DlepDecodeError(`IPv4 Address has ${i.value.length} bytes`);
      return [...i.value.subarray(1)].join('.');
    });
}
