/** Decodes one struct http_event (bpf/flowmon.h) from the ring buffer into an HttpEvent. */
import { HTTP_KIND_RESPONSE, httpEvent } from '../../bpf/types.js';
import type { MonotonicClock } from './clock.js';
import { decodeFlowKey, type FlowKeyCache } from './flow-key.js';
import { newHttpLine, parseHttpAt } from './http-parser.js';
import type { HttpEvent } from './records.js';

const H = httpEvent.offset;

/** One parse at a time: its members are copied into the event. */
const line = newHttpLine();

/**
 * `at` is the record's offset in `data`; undefined when the payload is not an HTTP line after all.
 * `keys` (with the same ifaceName) decodes a repeated flow key once.
 */
export function decodeHttpEvent(
  data: Buffer,
  at: number,
  node: string,
  clock: MonotonicClock,
  ifaceName: (ifindex: number) => string,
  keys?: FlowKeyCache,
): HttpEvent | undefined {
  const copied = data.readUInt16LE(at + H.copied);
  if (!parseHttpAt(data, at + H.data, copied, data.readUInt16LE(at + H.payload_len), line)) return undefined;
  if ((data[at + H.kind] === HTTP_KIND_RESPONSE) !== (line.kind === 'response')) return undefined;
  const key = keys ? keys.decode(data, at + H.key) : decodeFlowKey(data, at + H.key, ifaceName);
  // Built field by field, in one fixed shape: object spread here cost 30x more (bench/monitor).
  return {
    node,
    time: clock.toWallMsOf(data.readUInt32LE(at + H.time_ns), data.readUInt32LE(at + H.time_ns + 4)),
    iface: key.iface,
    direction: key.direction,
    ipVersion: key.ipVersion,
    src: key.src,
    dst: key.dst,
    srcPort: key.srcPort,
    dstPort: key.dstPort,
    protocol: key.protocol,
    kind: line.kind,
    method: line.method,
    url: line.url,
    host: line.host,
    status: line.status,
    version: line.version,
    truncated: line.truncated,
  };
}
