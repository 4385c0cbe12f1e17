/**
 * Mirrors of the structs the kernel programs share with TypeScript, member by member in
 * the C order: bpf/flow_key.h, bpf/flowmon.h, bpf/qos.h, bpf/linkem.h. Offsets, sizes and
 * codecs follow from these declarations (c-struct.ts); src/bpf/types.test.ts checks every
 * one against the compiled objects' BTF. Change a header and its mirror here together.
 */
import { cStruct, type StructValue } from './c-struct.js';
import type { Codec } from './map.js';

export const u32Key: Codec<number> = {
  size: 4,
  encode: (v, b, o) => void b.writeUInt32LE(v, o),
  decode: (b, o) => b.readUInt32LE(o),
};

// ---- bpf/flow_key.h (flowmon's map key, parse.h's output, the head of http_event) ----

/** Decoded lazily by the monitor; the raw bytes are the flow's identity. */
export const flowKey = cStruct('flow_key', {
  src: 'u8[16]',
  dst: 'u8[16]',
  src_port: 'u16',
  dst_port: 'u16',
  ifindex: 'u32',
  protocol: 'u8',
  ip_version: 'u8',
  direction: 'u8',
  _pad: 'u8',
});
export const FLOWMON_DIR_EGRESS = 1;

// ---- bpf/flowmon.h (bpf/flowmon.bpf.c) ----

export const FLOWMON_L3 = 1;
export const FLOWMON_L4 = 2;
export const FLOWMON_L7 = 4;
export const HTTP_KIND_REQUEST = 1;
export const HTTP_KIND_RESPONSE = 2;
export const HTTP_COPY_MAX = 512;

/** One slot of the per-CPU value. */
export const flowValue = cStruct('flow_value', {
  packets: 'u64',
  bytes: 'u64',
  /** The tick clock (bpf_jiffies64); TickClock maps it to CLOCK_MONOTONIC. */
  first_seen_jiffies: 'u64',
  last_seen_jiffies: 'u64',
  tcp_flags: 'u8',
  dscp: 'u8',
  /** The kernel's own: whether the next TCP segment can start an HTTP line. */
  l7_in_write: 'u8',
  /** The kernel's own: FLOWMON_L7_* of bpf/flowmon.h, whether the direction is looked at. */
  l7_state: 'u8',
  l7_next_seq: 'u32',
});

/** jiffies and CLOCK_MONOTONIC read together. */
export const flowmonClockSample = cStruct('flowmon_clock_sample', { jiffies: 'u64', mono_ns: 'u64' });
export type FlowmonClockSample = StructValue<typeof flowmonClockSample>;

/** flowmon's global data (.bss), written whole by user space. */
export const flowmonConfig = cStruct('flowmon_config', {
  metrics: 'u32',
  l7_sample: 'u32',
  /** How many interfaces flowmon_ifaces holds disabled; 0: the programs skip that lookup. */
  ifaces_disabled: 'u32',
  _pad: 'u32',
});
export type FlowmonConfig = StructValue<typeof flowmonConfig>;

export const flowmonIface = cStruct('flowmon_iface', { enabled: 'u32' });
/** enabled: 0 or 1. */
export type FlowmonIface = StructValue<typeof flowmonIface>;

export const flowmonCounters = cStruct('flowmon_counters', {
  packets_seen: 'u64',
  bytes_seen: 'u64',
  flows_created: 'u64',
  flow_map_full: 'u64',
  http_events: 'u64',
  events_dropped: 'u64',
  l7_sampled_out: 'u64',
  malformed: 'u64',
  non_ip: 'u64',
});
export type FlowmonCounters = StructValue<typeof flowmonCounters>;
export function zeroFlowmonCounters(): FlowmonCounters {
  return flowmonCounters.decode(Buffer.alloc(flowmonCounters.size), 0);
}

/** A ring buffer record: the flow key, these fields, then the copied payload. */
export const httpEvent = cStruct('http_event', {
  key: flowKey,
  time_ns: 'u64',
  payload_len: 'u16',
  copied: 'u16',
  kind: 'u8',
  _pad: 'u8[3]',
  data: `u8[${HTTP_COPY_MAX}]`,
});

// ---- bpf/qos.h (bpf/qos.bpf.c) ----

export const QOS_MAX_RULES = 1024;
export const QOS_RULE_WORDS = 16;
export const QOS_MAX_CLASSES = 16;
export const QOS_ANY_DSCP = 0xff;
export const QOS_POLICE_DROP = 0;
export const QOS_POLICE_REMARK = 1;

export const qosConfig = cStruct('qos_config', { active: 'u32', enabled: 'u32' });
/** active: the generation in force (0 or 1); enabled: 0 lets packets pass untouched. */
export type QosConfig = StructValue<typeof qosConfig>;

/** `prefixlen` counts the generation byte's 8 bits; addr is IPv6, or IPv4 as ::ffff:a.b.c.d. */
export const qosLpmKey = cStruct('qos_lpm_key', {
  prefixlen: 'u32',
  gen: 'u8',
  addr: 'u8[16]',
  _pad: 'u8[3]',
});
export type QosLpmKey = StructValue<typeof qosLpmKey>;

/** bits: bit i = rule i of the generation. */
export const qosRuleset = cStruct('qos_ruleset', { bits: `u64[${QOS_RULE_WORDS}]` });
export type QosRuleset = StructValue<typeof qosRuleset>;

export const qosRule = cStruct('qos_rule', {
  src_port_min: 'u16',
  src_port_max: 'u16',
  dst_port_min: 'u16',
  dst_port_max: 'u16',
  ifindex: 'u32',
  /** HTB classid, major << 16 | minor; 0 leaves skb->priority */
  priority: 'u32',
  protocol: 'u8',
  match_dscp: 'u8',
  set_dscp: 'u8',
  police_action: 'u8',
  police_dscp: 'u8',
  class_index: 'u8',
  _pad: 'u8[2]',
  /** bytes per second; 0: no policer */
  police_rate: 'u64',
  police_burst: 'u64',
});
export type QosRuleEntry = StructValue<typeof qosRule>;

/** User space only writes it whole, as zeroes; `lock` is struct bpf_spin_lock (one u32). */
export const qosBucket = cStruct('qos_bucket', {
  lock: 'u32',
  _pad: 'u32',
  tokens: 'u64',
  last_ns: 'u64',
});

export const qosCounters = cStruct('qos_counters', {
  packets: 'u64',
  bytes: 'u64',
  drops: 'u64',
  remarks: 'u64',
});
export type QosCountersEntry = StructValue<typeof qosCounters>;

// ---- bpf/linkem.h (bpf/linkem.bpf.c) ----

export const linkemConfig = cStruct('linkem_config', { loss_ppm: 'u32', burst: 'u32' });
export type LinkemConfig = StructValue<typeof linkemConfig>;

export const linkemCounters = cStruct('linkem_counters', {
  passed_packets: 'u64',
  passed_bytes: 'u64',
  dropped_packets: 'u64',
  dropped_bytes: 'u64',
  bursts: 'u64',
});
export type LinkemCounters = StructValue<typeof linkemCounters>;
