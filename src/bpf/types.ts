/**
 * Mirrors of the structs in bpf/types.h, field by field. The sizes are checked against
 * the compiled objects' BTF by src/bpf/types.test.ts.
 */
import type { Codec } from './map.js';

export const u32Key: Codec<number> = {
  size: 4,
  encode: (v, b, o) => void b.writeUInt32LE(v, o),
  decode: (b, o) => b.readUInt32LE(o),
};

export interface LinkemConfig {
  lossPpm: number;
}
export const linkemConfig: Codec<LinkemConfig> = {
  size: 8,
  encode: (v, b, o) => {
    b.writeUInt32LE(v.lossPpm, o);
    b.writeUInt32LE(0, o + 4);
  },
  decode: (b, o) => ({ lossPpm: b.readUInt32LE(o) }),
};

export interface LinkemCounters {
  passedPackets: bigint;
  passedBytes: bigint;
  droppedPackets: bigint;
  droppedBytes: bigint;
}
export const linkemCounters: Codec<LinkemCounters> = {
  size: 32,
  encode: (v, b, o) => {
    b.writeBigUInt64LE(v.passedPackets, o);
    b.writeBigUInt64LE(v.passedBytes, o + 8);
    b.writeBigUInt64LE(v.droppedPackets, o + 16);
    b.writeBigUInt64LE(v.droppedBytes, o + 24);
  },
  decode: (b, o) => ({
    passedPackets: b.readBigUInt64LE(o),
    passedBytes: b.readBigUInt64LE(o + 8),
    droppedPackets: b.readBigUInt64LE(o + 16),
    droppedBytes: b.readBigUInt64LE(o + 24),
  }),
};

// ---- flowmon (bpf/flowmon.bpf.c) ----

export const FLOWMON_L3 = 1;
export const FLOWMON_L4 = 2;
export const FLOWMON_L7 = 4;
export const HTTP_KIND_REQUEST = 1;
export const HTTP_KIND_RESPONSE = 2;
export const HTTP_COPY_MAX = 512;

/** struct flow_key: decoded lazily by the monitor; the raw 44 bytes are the flow's identity. */
export const FLOW_KEY_SIZE = 44;
export const flowKeyLayout = {
  src: 0,
  dst: 16,
  srcPort: 32,
  dstPort: 34,
  ifindex: 36,
  protocol: 40,
  ipVersion: 41,
  direction: 42,
} as const;

/** struct flow_value, one slot of the per-CPU value. */
export const FLOW_VALUE_SIZE = 40;
export const flowValueLayout = {
  packets: 0,
  bytes: 8,
  firstSeenNs: 16,
  lastSeenNs: 24,
  tcpFlags: 32,
  dscp: 33,
} as const;

export interface FlowmonConfig {
  metrics: number;
  l7Sample: number;
}
export const flowmonConfig: Codec<FlowmonConfig> = {
  size: 8,
  encode: (v, b, o) => {
    b.writeUInt32LE(v.metrics, o);
    b.writeUInt32LE(v.l7Sample, o + 4);
  },
  decode: (b, o) => ({ metrics: b.readUInt32LE(o), l7Sample: b.readUInt32LE(o + 4) }),
};

export interface FlowmonIface {
  enabled: boolean;
}
export const flowmonIface: Codec<FlowmonIface> = {
  size: 4,
  encode: (v, b, o) => void b.writeUInt32LE(v.enabled ? 1 : 0, o),
  decode: (b, o) => ({ enabled: b.readUInt32LE(o) !== 0 }),
};

const COUNTER_NAMES = [
  'packetsSeen',
  'bytesSeen',
  'flowsCreated',
  'flowMapFull',
  'httpEvents',
  'eventsDropped',
  'l7SampledOut',
  'malformed',
  'nonIp',
] as const;
export type FlowmonCounters = Record<(typeof COUNTER_NAMES)[number], bigint>;
export const flowmonCounters: Codec<FlowmonCounters> = {
  size: COUNTER_NAMES.length * 8,
  encode: (v, b, o) => {
    COUNTER_NAMES.forEach((name, i) => {
      b.writeBigUInt64LE(v[name], o + i * 8);
    });
  },
  decode: (b, o) =>
    Object.fromEntries(
      COUNTER_NAMES.map((name, i) => [name, b.readBigUInt64LE(o + i * 8)]),
    ) as FlowmonCounters,
};
export function zeroFlowmonCounters(): FlowmonCounters {
  return Object.fromEntries(COUNTER_NAMES.map((name) => [name, 0n])) as FlowmonCounters;
}

/** struct http_event: the flow key at 0, then these fields, then the copied payload. */
export const httpEventLayout = {
  key: 0,
  timeNs: 48,
  payloadLen: 56,
  copied: 58,
  kind: 60,
  data: 64,
  size: 64 + HTTP_COPY_MAX,
} as const;
