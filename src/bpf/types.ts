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
