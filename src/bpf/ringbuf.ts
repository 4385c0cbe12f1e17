/**
 * A reader of a BPF ring buffer in pure JS over its mmapped pages: no blocking call, no
 * per-event FFI callback. It drains on a timer, so the event loop is never blocked
 * (a spike here measured ~2 M events/s this way against ~0.9 M/s through libbpf callbacks).
 *
 * Layout (kernel/bpf/ringbuf.c): page 0 holds the consumer position (ours to write),
 * page 1 the producer position, then the data area mapped twice in a row so a record
 * that wraps is still contiguous. Each record has an 8-byte header: u32 length with
 * BUSY (bit 31) and DISCARD (bit 30) flags, u32 page offset; records are 8-byte aligned.
 */
import { SysError } from '../shared/errno.js';
import { errno, libc, MAP_FAILED, view } from '../shared/libc.js';
import type { BpfMap } from './map.js';

const BPF_MAP_TYPE_RINGBUF = 27;
const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const BUSY_BIT = 0x80000000;
const DISCARD_BIT = 0x40000000;
const HEADER = 8;
/** Consumed bytes between two stores of the consumer position (at most a quarter of the ring). */
const PUBLISH_BYTES = 64 * 1024;

/**
 * Receives one record at data[offset .. offset+length). `data` is the kernel's memory: read
 * what you need during the call and copy anything that must outlive it.
 */
export type RecordHandler = (data: Buffer, offset: number, length: number) => void;

export class RingBufferReader {
  private readonly page = libc.pageSize;
  private readonly size: number;
  private readonly mask: number;
  private readonly publishBytes: number;
  private consumerPtr: bigint;
  private producerPtr: bigint;
  private readonly consumer: DataView;
  private readonly producer: DataView;
  private readonly data: DataView;
  private readonly dataBytes: Buffer;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(readonly map: BpfMap) {
    if (map.type !== BPF_MAP_TYPE_RINGBUF) throw new Error(`map ${map.name} is not a ring buffer`);
    this.size = map.maxEntries;
    this.mask = this.size - 1;
    this.publishBytes = Math.min(PUBLISH_BYTES, this.size / 4);
    this.consumerPtr = libc.mmap(null, this.page, PROT_READ | PROT_WRITE, MAP_SHARED, map.fd, 0);
    if (this.consumerPtr === MAP_FAILED)
      throw new SysError(`mmap of ring buffer ${map.name} (consumer)`, errno());
    const producerLen = this.page + 2 * this.size;
    this.producerPtr = libc.mmap(null, producerLen, PROT_READ, MAP_SHARED, map.fd, this.page);
    if (this.producerPtr === MAP_FAILED) {
      libc.munmap(this.consumerPtr, this.page);
      throw new SysError(`mmap of ring buffer ${map.name} (producer)`, errno());
    }
    this.consumer = new DataView(view(this.consumerPtr, this.page));
    const producer = view(this.producerPtr, producerLen);
    this.producer = new DataView(producer, 0, this.page);
    this.data = new DataView(producer, this.page, 2 * this.size);
    this.dataBytes = Buffer.from(producer, this.page, 2 * this.size);
  }

  /** Consumes every committed record now; returns how many were handed to `handler`. */
  drain(handler: RecordHandler): number {
    if (this.closed) return 0;
    // Positions are u64 counters; 2^53 bytes is far beyond any process lifetime.
    let cons = Number(this.consumer.getBigUint64(0, true));
    const prod = Number(this.producer.getBigUint64(0, true));
    let published = cons;
    let delivered = 0;
    while (cons < prod) {
      const at = cons & this.mask;
      const header = this.data.getUint32(at, true);
      if (header & BUSY_BIT) break; // the producer is still writing this one
      const length = header & ~(BUSY_BIT | DISCARD_BIT);
      if (!(header & DISCARD_BIT)) {
        handler(this.dataBytes, at + HEADER, length);
        delivered++;
      }
      cons += (length + HEADER + 7) & ~7;
      // Publish as we go, so the kernel can reuse space while a long drain runs, but once
      // per publishBytes rather than per record (docs/monitor.md, "User side").
      if (cons - published >= this.publishBytes) published = this.publish(published, cons);
    }
    if (cons !== published) this.publish(published, cons);
    return delivered;
  }

  /** Stores the consumer position: the low half alone while the high half stays (no BigInt). */
  private publish(from: number, to: number): number {
    if (Math.floor(to / 2 ** 32) === Math.floor(from / 2 ** 32)) this.consumer.setUint32(0, to >>> 0, true);
    else this.consumer.setBigUint64(0, BigInt(to), true);
    return to;
  }

  /** Drains every `intervalMs` until close(). */
  start(handler: RecordHandler, intervalMs = 20): void {
    if (this.timer) throw new Error(`ring buffer ${this.map.name} is already being read`);
    this.timer = setInterval(() => this.drain(handler), intervalMs);
  }

  close(): void {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    this.closed = true;
    libc.munmap(this.consumerPtr, this.page);
    libc.munmap(this.producerPtr, this.page + 2 * this.size);
    this.consumerPtr = 0n;
    this.producerPtr = 0n;
  }
}
