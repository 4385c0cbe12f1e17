/**
 * RaptorQ (RFC 6330) from the `raptorq` package: the Rust crate by Christopher Berner
 * compiled to WebAssembly (no native build). One FEC block of the diode is one RaptorQ
 * object of K symbols of T bytes: with T a multiple of 8 and K <= 4096 the crate's
 * defaults make it a single source block (SBN 0) whose source packets are the K symbols
 * in order (checked in fec.test.ts), so the sender sends sources as ordinary frames and
 * only the repair symbols as extra ones. Repair symbol ids start at the crate's padded K',
 * not at K, so a repair frame carries its id.
 *
 * Measured here (one core, wasm): encoding and decoding run at 0.7-0.8 Gbit/s of source
 * data for K = 1024-4096 (bench/diode/fec-cpu.ts prints it).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Decoder, Encoder, initSync } from 'raptorq/raptorq.js';

/** The largest block: beyond it the crate splits the object into several source blocks. */
export const MAX_BLOCK_SYMBOLS = 4096;

let loaded = false;
function load(): void {
  if (loaded) return;
  const require = createRequire(import.meta.url);
  initSync(readFileSync(require.resolve('raptorq/raptorq_bg.wasm')));
  loaded = true;
}

export interface RepairSymbol {
  /** Encoding symbol id (>= K). */
  esi: number;
  symbol: Buffer;
}

/** `r` repair symbols for the `data.length / t` source symbols in `data`. */
export function encodeRepairs(data: Uint8Array, t: number, r: number): RepairSymbol[] {
  load();
  const k = data.length / t;
  if (!Number.isInteger(k) || k < 1 || k > MAX_BLOCK_SYMBOLS || t % 8 !== 0)
    throw new RangeError(`block of ${data.length} bytes in symbols of ${t}`);
  if (r === 0) return [];
  const encoder = Encoder.with_defaults(data, t);
  try {
    const packets = encoder.encode(r);
    return packets.slice(packets.length - r).map((p) => {
      if (p[0] !== 0) throw new Error('raptorq split the block');
      return {
        esi: (p[1]! << 16) | (p[2]! << 8) | p[3]!,
        symbol: Buffer.from(p.buffer, p.byteOffset + 4, t),
      };
    });
  } finally {
    encoder.free();
  }
}

/** Decodes one block from any K (+ a few) of its symbols. */
export class BlockDecoder {
  private readonly decoder: Decoder;
  private readonly packet: Uint8Array;
  private done = false;

  constructor(
    readonly k: number,
    readonly t: number,
  ) {
    load();
    this.decoder = Decoder.with_defaults(BigInt(k * t), t);
    this.packet = new Uint8Array(4 + t);
  }

  /** Adds a symbol; returns the whole block (K * T bytes) once it can be decoded. */
  add(esi: number, symbol: Uint8Array): Uint8Array | undefined {
    if (this.done) return undefined;
    const p = this.packet;
    p[0] = 0;
    p[1] = (esi >>> 16) & 0xff;
    p[2] = (esi >>> 8) & 0xff;
    p[3] = esi & 0xff;
    p.fill(0, 4);
    p.set(symbol.subarray(0, this.t), 4);
    const out = this.decoder.decode(p);
    if (out) this.done = true;
    return out;
  }

  free(): void {
    this.decoder.free();
  }
}
