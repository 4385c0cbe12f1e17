/**
 * The user-space side of the kernel's flow table: reads it every export interval, turns
 * the kernel's cumulative counters into per-interval deltas (FlowRecords), and expires
 * flows idle for longer than the timeout. Live entries are never deleted, so no increment
 * is lost between a read and a delete.
 *
 * Hot path (docs/monitor.md, "User side"): whole-word views over the batch buffers;
 * counters are doubles from two u32 halves (exact below 2^53), not BigInt; what is kept
 * per flow lives in flat typed arrays by slot, not an object per flow; a flow's key is
 * decoded only the first time; and since the kernel walks its buckets in the same order
 * every read, each flow is first looked for where the last read met it next.
 */
import type { BpfMap } from '../../bpf/map.js';
import { flowKey, flowValue } from '../../bpf/types.js';
import type { MonotonicClock, TickClock } from './clock.js';
import { decodeFlowKey, hashKey } from './flow-key.js';
import type { FlowKey, FlowRecord } from './records.js';

const KEY_BYTES = flowKey.size;
const KEY_WORDS = KEY_BYTES / 4;
/** struct flow_value's members: u64s as u32 word indexes, u8s as byte offsets. */
const V = flowValue.offset;
const PACKETS = V.packets / 4;
const BYTES = V.bytes / 4;
const FIRST_SEEN = V.first_seen_jiffies / 4;
const LAST_SEEN = V.last_seen_jiffies / 4;
/** Entries per batch lookup: 256 to 65,536 cost the same per entry (docs/monitor.md). */
const BATCH_ENTRIES = 16384;
const TWO_32 = 2 ** 32;
/** No slot (chain ends, free list ends, no hint). */
const NONE = -1;

export interface FlowTableOptions {
  node: string;
  idleTimeoutMs: number;
  ifaceName: (ifindex: number) => string;
}

export class FlowTable {
  /** Per-CPU values: one 8-byte-aligned slot per possible CPU. */
  private readonly slotBytes: number;
  private readonly cpus: number;
  private readonly stride: number;
  // Per slot: the key's words, the totals at the last read, the decoded key, the next slot
  // of the same hash bucket, and the slot the last read met right after this one.
  private keys = new Uint32Array(0);
  private packets = new Float64Array(0);
  private bytes = new Float64Array(0);
  private decoded: (FlowKey | undefined)[] = [];
  private chain = new Int32Array(0);
  private after = new Int32Array(0);
  private buckets = new Int32Array(0);
  private capacity = 0;
  /** Slots ever handed out; freed ones are reused first. */
  private used = 0;
  private free = NONE;
  private count = 0;
  /** The slot of the last read's first flow. */
  private head = NONE;
  expired = 0;

  constructor(
    private readonly map: BpfMap,
    private readonly clock: MonotonicClock,
    private readonly ticks: TickClock,
    private readonly options: FlowTableOptions,
  ) {
    if (map.keySize !== KEY_BYTES)
      throw new Error(`flow map key is ${map.keySize} bytes, expected ${KEY_BYTES}`);
    this.slotBytes = Math.ceil(flowValue.size / 8) * 8;
    this.stride = map.valueBytes;
    this.cpus = map.valueBytes / this.slotBytes;
    this.grow(1024);
  }

  get size(): number {
    return this.count;
  }

  private grow(capacity: number): void {
    const keys = new Uint32Array(capacity * KEY_WORDS);
    keys.set(this.keys);
    this.keys = keys;
    const packets = new Float64Array(capacity);
    packets.set(this.packets);
    this.packets = packets;
    const bytes = new Float64Array(capacity);
    bytes.set(this.bytes);
    this.bytes = bytes;
    const after = new Int32Array(capacity).fill(NONE);
    after.set(this.after);
    this.after = after;
    this.chain = new Int32Array(capacity);
    // As many buckets as slots (a power of two): chains stay about one long.
    this.buckets = new Int32Array(capacity).fill(NONE);
    this.capacity = capacity;
    for (let s = 0; s < this.used; s++) if (this.decoded[s]) this.link(s, hashKey(this.keys, s * KEY_WORDS));
  }

  private link(slot: number, hash: number): void {
    const b = hash & (this.capacity - 1);
    this.chain[slot] = this.buckets[b] as number;
    this.buckets[b] = slot;
  }

  /** Whether the slot holds the key at words[at ..]. */
  private holds(slot: number, words: Uint32Array, at: number): boolean {
    const keys = this.keys;
    const k = slot * KEY_WORDS;
    for (let w = 0; w < KEY_WORDS; w++) if (keys[k + w] !== words[at + w]) return false;
    return true;
  }

  private find(words: Uint32Array, at: number, hash: number): number {
    for (let s = this.buckets[hash & (this.capacity - 1)] as number; s !== NONE; s = this.chain[s] as number)
      if (this.holds(s, words, at)) return s;
    return NONE;
  }

  private add(words: Uint32Array, at: number, hash: number, key: FlowKey): number {
    let slot = this.free;
    if (slot !== NONE) this.free = this.chain[slot] as number;
    else {
      if (this.used === this.capacity) this.grow(this.capacity * 2);
      slot = this.used++;
    }
    this.keys.set(words.subarray(at, at + KEY_WORDS), slot * KEY_WORDS);
    this.packets[slot] = 0;
    this.bytes[slot] = 0;
    this.after[slot] = NONE;
    this.decoded[slot] = key;
    this.link(slot, hash);
    this.count++;
    return slot;
  }

  private remove(slot: number): void {
    const b = hashKey(this.keys, slot * KEY_WORDS) & (this.capacity - 1);
    let prev = NONE;
    for (let s = this.buckets[b] as number; s !== NONE; prev = s, s = this.chain[s] as number) {
      if (s !== slot) continue;
      if (prev === NONE) this.buckets[b] = this.chain[s] as number;
      else this.chain[prev] = this.chain[s] as number;
      break;
    }
    this.decoded[slot] = undefined;
    this.chain[slot] = this.free;
    this.free = slot;
    this.count--;
  }

  /** Reads the kernel table; returns one record per flow that moved since the last read. */
  read(): FlowRecord[] {
    const out: FlowRecord[] = [];
    const stale: number[] = [];
    const nowMs = this.clock.toWallMs(this.clock.nowNs());
    const wallOffsetMs = nowMs - Number(this.clock.nowNs()) / 1e6;
    const { node, idleTimeoutMs, ifaceName } = this.options;
    const { cpus, slotBytes, stride } = this;
    let prev = NONE;
    this.map.readBatches((keys, values, count) => {
      // Whole-word views: the batch buffers are allocated alone, so they are 8-byte aligned.
      const kw = new Uint32Array(keys.buffer, keys.byteOffset, count * KEY_WORDS);
      const vw = new Uint32Array(values.buffer, values.byteOffset, (count * stride) / 4);
      for (let i = 0; i < count; i++) {
        const at = i * KEY_WORDS;
        // Where the last read met the flow after the previous one; else by hash.
        let slot = prev === NONE ? this.head : (this.after[prev] as number);
        if (slot === NONE || !this.decoded[slot] || !this.holds(slot, kw, at)) {
          const hash = hashKey(kw, at);
          slot = this.find(kw, at, hash);
          if (slot === NONE) slot = this.add(kw, at, hash, decodeFlowKey(keys, at * 4, ifaceName));
        }
        if (prev === NONE) this.head = slot;
        else this.after[prev] = slot;
        prev = slot;
        let packets = 0;
        let bytes = 0;
        let first = 0;
        let last = 0;
        let flags = 0;
        let dscp = 0;
        for (let cpu = 0; cpu < cpus; cpu++) {
          const o = i * stride + cpu * slotBytes;
          const w = o >> 2;
          const lastCpu = (vw[w + LAST_SEEN] as number) + (vw[w + LAST_SEEN + 1] as number) * TWO_32;
          if (lastCpu === 0) continue; // this CPU never saw the flow
          packets += (vw[w + PACKETS] as number) + (vw[w + PACKETS + 1] as number) * TWO_32;
          bytes += (vw[w + BYTES] as number) + (vw[w + BYTES + 1] as number) * TWO_32;
          const firstCpu = (vw[w + FIRST_SEEN] as number) + (vw[w + FIRST_SEEN + 1] as number) * TWO_32;
          if (first === 0 || firstCpu < first) first = firstCpu;
          if (lastCpu > last) {
            last = lastCpu;
            dscp = values[o + V.dscp] as number;
          }
          flags |= values[o + V.tcp_flags] as number;
        }
        const lastMs = Math.floor(this.ticks.toMonoMs(last) + wallOffsetMs);
        const seenPackets = this.packets[slot] as number;
        const seenBytes = this.bytes[slot] as number;
        if (packets !== seenPackets || bytes !== seenBytes) {
          const k = this.decoded[slot] as FlowKey;
          out.push({
            node,
            iface: k.iface,
            direction: k.direction,
            ipVersion: k.ipVersion,
            src: k.src,
            dst: k.dst,
            srcPort: k.srcPort,
            dstPort: k.dstPort,
            protocol: k.protocol,
            packets: packets - seenPackets,
            bytes: bytes - seenBytes,
            tcpFlags: flags,
            dscp,
            firstSeen: Math.floor(this.ticks.toMonoMs(first) + wallOffsetMs),
            lastSeen: lastMs,
          });
          this.packets[slot] = packets;
          this.bytes[slot] = bytes;
        }
        if (nowMs - lastMs > idleTimeoutMs) stale.push(slot);
      }
    }, BATCH_ENTRIES);
    for (const slot of stale) {
      if (!this.decoded[slot]) continue; // met twice in one pass (a flow inserted meanwhile)
      const k = slot * KEY_BYTES;
      this.map.delete(Buffer.from(this.keys.buffer, this.keys.byteOffset + k, KEY_BYTES));
      this.remove(slot);
      this.expired++;
    }
    return out;
  }
}
