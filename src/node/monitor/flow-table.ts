/**
 * The user-space side of the kernel's flow table: reads it in batches every export
 * interval, turns the kernel's cumulative per-CPU counters into per-interval deltas
 * (FlowRecords), and expires flows idle for longer than the timeout. Live entries are
 * never deleted, so no increment is lost between a read and a delete.
 */
import type { BpfMap } from '../../bpf/map.js';
import { FLOW_KEY_SIZE, FLOW_VALUE_SIZE, flowValueLayout as V } from '../../bpf/types.js';
import type { MonotonicClock } from './clock.js';
import { decodeFlowKey } from './flow-key.js';
import type { FlowKey, FlowRecord } from './records.js';

interface Seen {
  key: FlowKey;
  packets: bigint;
  bytes: bigint;
  lastSeenNs: bigint;
}

export interface FlowTableOptions {
  node: string;
  idleTimeoutMs: number;
  ifaceName: (ifindex: number) => string;
}

export class FlowTable {
  private readonly seen = new Map<string, Seen>();
  private readonly slot: number;
  private readonly cpus: number;
  expired = 0;

  constructor(
    private readonly map: BpfMap,
    private readonly clock: MonotonicClock,
    private readonly options: FlowTableOptions,
  ) {
    if (map.keySize !== FLOW_KEY_SIZE)
      throw new Error(`flow map key is ${map.keySize} bytes, expected ${FLOW_KEY_SIZE}`);
    this.slot = Math.ceil(FLOW_VALUE_SIZE / 8) * 8;
    this.cpus = map.valueBytes / this.slot;
  }

  get size(): number {
    return this.seen.size;
  }

  /** Reads the kernel table; returns one record per flow that moved since the last read. */
  read(): FlowRecord[] {
    const out: FlowRecord[] = [];
    const stale: Buffer[] = [];
    const now = this.clock.nowNs();
    const idleNs = BigInt(this.options.idleTimeoutMs) * 1_000_000n;
    this.map.readBatches((keys, values, count) => {
      for (let i = 0; i < count; i++) {
        const keyOff = i * FLOW_KEY_SIZE;
        const id = keys.toString('latin1', keyOff, keyOff + FLOW_KEY_SIZE);
        let packets = 0n;
        let bytes = 0n;
        let first = 0n;
        let last = 0n;
        let flags = 0;
        let dscp = 0;
        for (let cpu = 0; cpu < this.cpus; cpu++) {
          const o = i * this.map.valueBytes + cpu * this.slot;
          const lastCpu = values.readBigUInt64LE(o + V.lastSeenNs);
          if (lastCpu === 0n) continue; // this CPU never saw the flow
          packets += values.readBigUInt64LE(o + V.packets);
          bytes += values.readBigUInt64LE(o + V.bytes);
          const firstCpu = values.readBigUInt64LE(o + V.firstSeenNs);
          if (first === 0n || firstCpu < first) first = firstCpu;
          if (lastCpu > last) {
            last = lastCpu;
            dscp = values[o + V.dscp] ?? 0;
          }
          flags |= values[o + V.tcpFlags] ?? 0;
        }
        let prev = this.seen.get(id);
        if (!prev) {
          prev = {
            key: decodeFlowKey(keys, keyOff, this.options.ifaceName),
            packets: 0n,
            bytes: 0n,
            lastSeenNs: 0n,
          };
          this.seen.set(id, prev);
        }
        if (packets !== prev.packets || bytes !== prev.bytes) {
          out.push({
            ...prev.key,
            node: this.options.node,
            packets: Number(packets - prev.packets),
            bytes: Number(bytes - prev.bytes),
            tcpFlags: flags,
            dscp,
            firstSeen: this.clock.toWallMs(first),
            lastSeen: this.clock.toWallMs(last),
          });
          prev.packets = packets;
          prev.bytes = bytes;
        }
        prev.lastSeenNs = last;
        if (now - last > idleNs) stale.push(Buffer.from(keys.subarray(keyOff, keyOff + FLOW_KEY_SIZE)));
      }
    });
    for (const key of stale) {
      this.map.delete(key);
      this.seen.delete(key.toString('latin1'));
      this.expired++;
    }
    return out;
  }
}
