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

/** A struct of u64 fields only, in the order of `names`. */
export function u64Fields<N extends string>(names: readonly N[]): Codec<Record<N, bigint>> {
  return {
    size: names.length * 8,
    encode: (v, b, o) => {
      names.forEach((name, i) => {
        b.writeBigUInt64LE(v[name], o + i * 8);
      });
    },
    decode: (b, o) =>
      Object.fromEntries(names.map((name, i) => [name, b.readBigUInt64LE(o + i * 8)])) as Record<N, bigint>,
  };
}

export interface LinkemConfig {
  /** Outside a burst, the chance per million packets that one starts. */
  lossPpm: number;
  /** Packets lost in a row per burst; 0 or 1: independent loss. */
  burst: number;
}
export const linkemConfig: Codec<LinkemConfig> = {
  size: 8,
  encode: (v, b, o) => {
    b.writeUInt32LE(v.lossPpm, o);
    b.writeUInt32LE(v.burst, o + 4);
  },
  decode: (b, o) => ({ lossPpm: b.readUInt32LE(o), burst: b.readUInt32LE(o + 4) }),
};

export interface LinkemCounters {
  passedPackets: bigint;
  passedBytes: bigint;
  droppedPackets: bigint;
  droppedBytes: bigint;
  /** Loss bursts started. */
  bursts: bigint;
}
export const linkemCounters: Codec<LinkemCounters> = u64Fields([
  'passedPackets',
  'passedBytes',
  'droppedPackets',
  'droppedBytes',
  'bursts',
]);

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
  /** The tick clock (bpf_jiffies64); TickClock maps it to CLOCK_MONOTONIC. */
  firstSeenJiffies: 16,
  lastSeenJiffies: 24,
  tcpFlags: 32,
  dscp: 33,
} as const;

/** struct flowmon_clock_sample: jiffies and CLOCK_MONOTONIC read together. */
export const flowmonClockSample = u64Fields(['jiffies', 'monoNs'] as const);
export type FlowmonClockSample = ReturnType<typeof flowmonClockSample.decode>;

/** struct flowmon_config: flowmon's global data (.bss), written whole by user space. */
export interface FlowmonConfig {
  metrics: number;
  l7Sample: number;
  /** How many interfaces flowmon_ifaces holds disabled; 0: the programs skip that lookup. */
  ifacesDisabled: number;
}
export const flowmonConfig: Codec<FlowmonConfig> = {
  size: 16,
  encode: (v, b, o) => {
    b.writeUInt32LE(v.metrics, o);
    b.writeUInt32LE(v.l7Sample, o + 4);
    b.writeUInt32LE(v.ifacesDisabled, o + 8);
    b.writeUInt32LE(0, o + 12);
  },
  decode: (b, o) => ({
    metrics: b.readUInt32LE(o),
    l7Sample: b.readUInt32LE(o + 4),
    ifacesDisabled: b.readUInt32LE(o + 8),
  }),
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
export const flowmonCounters: Codec<FlowmonCounters> = u64Fields(COUNTER_NAMES);
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

// ---- qos (bpf/qos.bpf.c) ----

export const QOS_MAX_RULES = 1024;
export const QOS_RULE_WORDS = 16;
export const QOS_MAX_CLASSES = 16;
export const QOS_ANY_DSCP = 0xff;
export const QOS_POLICE_DROP = 0;
export const QOS_POLICE_REMARK = 1;

export interface QosConfig {
  active: number;
  enabled: boolean;
}
export const qosConfig: Codec<QosConfig> = {
  size: 8,
  encode: (v, b, o) => {
    b.writeUInt32LE(v.active, o);
    b.writeUInt32LE(v.enabled ? 1 : 0, o + 4);
  },
  decode: (b, o) => ({ active: b.readUInt32LE(o), enabled: b.readUInt32LE(o + 4) !== 0 }),
};

/** struct qos_lpm_key; `prefixlen` counts the generation byte's 8 bits. */
export interface QosLpmKey {
  prefixlen: number;
  gen: number;
  /** 16 bytes: IPv6, or IPv4 as ::ffff:a.b.c.d */
  addr: Uint8Array;
}
export const qosLpmKey: Codec<QosLpmKey> = {
  size: 24,
  encode: (v, b, o) => {
    b.fill(0, o, o + 24);
    b.writeUInt32LE(v.prefixlen, o);
    b.writeUInt8(v.gen, o + 4);
    b.set(v.addr, o + 5);
  },
  decode: (b, o) => ({
    prefixlen: b.readUInt32LE(o),
    gen: b.readUInt8(o + 4),
    addr: Uint8Array.from(b.subarray(o + 5, o + 21)),
  }),
};

/** struct qos_ruleset: bit i = rule i of the generation. */
export const qosRuleset: Codec<bigint[]> = {
  size: QOS_RULE_WORDS * 8,
  encode: (v, b, o) => {
    for (let i = 0; i < QOS_RULE_WORDS; i++) b.writeBigUInt64LE(v[i] ?? 0n, o + i * 8);
  },
  decode: (b, o) => Array.from({ length: QOS_RULE_WORDS }, (_, i) => b.readBigUInt64LE(o + i * 8)),
};

export interface QosRuleEntry {
  srcPortMin: number;
  srcPortMax: number;
  dstPortMin: number;
  dstPortMax: number;
  ifindex: number;
  /** HTB classid, major << 16 | minor; 0 leaves skb->priority */
  priority: number;
  protocol: number;
  matchDscp: number;
  setDscp: number;
  policeAction: number;
  policeDscp: number;
  classIndex: number;
  /** bytes per second; 0: no policer */
  policeRate: bigint;
  policeBurst: bigint;
}
export const qosRule: Codec<QosRuleEntry> = {
  size: 40,
  encode: (v, b, o) => {
    b.fill(0, o, o + 40);
    b.writeUInt16LE(v.srcPortMin, o);
    b.writeUInt16LE(v.srcPortMax, o + 2);
    b.writeUInt16LE(v.dstPortMin, o + 4);
    b.writeUInt16LE(v.dstPortMax, o + 6);
    b.writeUInt32LE(v.ifindex, o + 8);
    b.writeUInt32LE(v.priority, o + 12);
    b.writeUInt8(v.protocol, o + 16);
    b.writeUInt8(v.matchDscp, o + 17);
    b.writeUInt8(v.setDscp, o + 18);
    b.writeUInt8(v.policeAction, o + 19);
    b.writeUInt8(v.policeDscp, o + 20);
    b.writeUInt8(v.classIndex, o + 21);
    b.writeBigUInt64LE(v.policeRate, o + 24);
    b.writeBigUInt64LE(v.policeBurst, o + 32);
  },
  decode: (b, o) => ({
    srcPortMin: b.readUInt16LE(o),
    srcPortMax: b.readUInt16LE(o + 2),
    dstPortMin: b.readUInt16LE(o + 4),
    dstPortMax: b.readUInt16LE(o + 6),
    ifindex: b.readUInt32LE(o + 8),
    priority: b.readUInt32LE(o + 12),
    protocol: b.readUInt8(o + 16),
    matchDscp: b.readUInt8(o + 17),
    setDscp: b.readUInt8(o + 18),
    policeAction: b.readUInt8(o + 19),
    policeDscp: b.readUInt8(o + 20),
    classIndex: b.readUInt8(o + 21),
    policeRate: b.readBigUInt64LE(o + 24),
    policeBurst: b.readBigUInt64LE(o + 32),
  }),
};

/** struct qos_bucket (the spin lock and pad are user space's zeroes). */
export const QOS_BUCKET_SIZE = 24;

export interface QosCountersEntry {
  packets: bigint;
  bytes: bigint;
  drops: bigint;
  remarks: bigint;
}
export const qosCounters: Codec<QosCountersEntry> = u64Fields(['packets', 'bytes', 'drops', 'remarks']);
