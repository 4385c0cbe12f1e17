/**
 * A loaded eBPF map, accessed by file descriptor: lookup, update, delete, iterate and
 * batch lookup on raw Buffers, plus a typed view through a Codec.
 */
import { SysError } from '../shared/errno.js';
import { ffi } from './libbpf.js';

export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

const ENOENT = 2;

/** Map types whose values are one slot per possible CPU (bpf.h enum bpf_map_type). */
const PER_CPU_TYPES = new Set([5 /* PERCPU_HASH */, 6 /* PERCPU_ARRAY */, 10 /* LRU_PERCPU_HASH */]);

let possibleCpus: number | undefined;
export function numPossibleCpus(): number {
  possibleCpus ??= ffi.numPossibleCpus();
  if (possibleCpus < 1) throw new SysError('libbpf_num_possible_cpus', possibleCpus);
  return possibleCpus;
}

/** Encodes and decodes a fixed-size C struct; the struct mirrors of src/bpf/types.ts are ones. */
export interface Codec<T> {
  readonly size: number;
  encode(value: T, into: Buffer, offset: number): void;
  decode(from: Buffer, offset: number): T;
}

export class BpfMap {
  /** Bytes one lookup returns: per-CPU maps hold one 8-byte-aligned slot per possible CPU. */
  readonly valueBytes: number;
  readonly perCpu: boolean;

  constructor(
    readonly name: string,
    readonly fd: number,
    readonly type: number,
    readonly keySize: number,
    readonly valueSize: number,
    readonly maxEntries: number,
  ) {
    this.perCpu = PER_CPU_TYPES.has(type);
    this.valueBytes = this.perCpu ? Math.ceil(valueSize / 8) * 8 * numPossibleCpus() : valueSize;
  }

  private checkKey(key: Buffer): void {
    if (key.length !== this.keySize) {
      throw new Error(`map ${this.name}: key is ${key.length} bytes, expected ${this.keySize}`);
    }
  }

  lookup(key: Buffer): Buffer | undefined {
    this.checkKey(key);
    const value = Buffer.alloc(this.valueBytes);
    const rc = ffi.mapLookup(this.fd, key, value);
    if (rc === -ENOENT) return undefined;
    if (rc < 0) throw new SysError(`lookup in map ${this.name}`, rc);
    return value;
  }

  update(key: Buffer, value: Buffer, flags = BPF_ANY): void {
    this.checkKey(key);
    if (value.length !== this.valueBytes) {
      throw new Error(`map ${this.name}: value is ${value.length} bytes, expected ${this.valueBytes}`);
    }
    const rc = ffi.mapUpdate(this.fd, key, value, flags);
    if (rc < 0) throw new SysError(`update of map ${this.name}`, rc);
  }

  /** Returns false when the key was not there. */
  delete(key: Buffer): boolean {
    this.checkKey(key);
    const rc = ffi.mapDelete(this.fd, key);
    if (rc === -ENOENT) return false;
    if (rc < 0) throw new SysError(`delete from map ${this.name}`, rc);
    return true;
  }

  /** Every key, by bpf_map_get_next_key (for maps without batch support). */
  *keys(): Generator<Buffer> {
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const rc = ffi.mapNextKey(this.fd, prev, next);
      if (rc === -ENOENT) return;
      if (rc < 0) throw new SysError(`iteration of map ${this.name}`, rc);
      yield next;
      prev = next;
    }
  }

  /**
   * Reads the whole map in batches of `chunk` entries (one syscall each) and calls
   * `each(keys, values, count)` per batch; with `andDelete` the entries are removed as read.
   * The Buffers are reused between batches: copy what must outlive the callback.
   */
  readBatches(
    each: (keys: Buffer, values: Buffer, count: number) => void,
    chunk = 4096,
    andDelete = false,
  ): number {
    const keys = Buffer.alloc(this.keySize * chunk);
    const values = Buffer.alloc(this.valueBytes * chunk);
    // Hash maps use a bucket index as the batch token; arrays use a key. Either fits in 8+ bytes.
    const tokenSize = Math.max(this.keySize, 8);
    let inBatch: Buffer | null = null;
    let outBatch = Buffer.alloc(tokenSize);
    let total = 0;
    const call = andDelete ? ffi.mapLookupAndDeleteBatch : ffi.mapLookupBatch;
    for (;;) {
      const count = [chunk];
      const rc = call(this.fd, inBatch, outBatch, keys, values, count, null);
      const n = count[0] ?? 0;
      if (rc < 0 && rc !== -ENOENT) throw new SysError(`batch lookup of map ${this.name}`, rc);
      if (n > 0) each(keys, values, n);
      total += n;
      if (rc === -ENOENT) return total; // the last batch, possibly with entries
      inBatch = outBatch;
      outBatch = Buffer.alloc(tokenSize);
    }
  }

  /** A typed view of this map through key and value codecs. */
  typed<K, V>(keyCodec: Codec<K>, valueCodec: Codec<V>): TypedMap<K, V> {
    if (keyCodec.size !== this.keySize || valueCodec.size !== this.valueSize) {
      throw new Error(
        `map ${this.name}: codecs are ${keyCodec.size}/${valueCodec.size} bytes, map is ${this.keySize}/${this.valueSize}`,
      );
    }
    return new TypedMap(this, keyCodec, valueCodec);
  }
}

export class TypedMap<K, V> {
  constructor(
    readonly map: BpfMap,
    private readonly keyCodec: Codec<K>,
    private readonly valueCodec: Codec<V>,
  ) {}

  private key(k: K): Buffer {
    const buf = Buffer.alloc(this.keyCodec.size);
    this.keyCodec.encode(k, buf, 0);
    return buf;
  }

  /** The value, or for per-CPU maps one value per possible CPU. */
  lookupAll(k: K): V[] | undefined {
    const raw = this.map.lookup(this.key(k));
    if (!raw) return undefined;
    const stride = this.map.perCpu ? Math.ceil(this.map.valueSize / 8) * 8 : this.map.valueSize;
    const out: V[] = [];
    for (let off = 0; off < raw.length; off += stride) out.push(this.valueCodec.decode(raw, off));
    return out;
  }

  lookup(k: K): V | undefined {
    return this.lookupAll(k)?.[0];
  }

  update(k: K, v: V, flags = BPF_ANY): void {
    const value = Buffer.alloc(this.map.valueBytes);
    const stride = this.map.perCpu ? Math.ceil(this.map.valueSize / 8) * 8 : this.map.valueSize;
    for (let off = 0; off < value.length; off += stride) this.valueCodec.encode(v, value, off);
    this.map.update(this.key(k), value, flags);
  }

  delete(k: K): boolean {
    return this.map.delete(this.key(k));
  }
}
