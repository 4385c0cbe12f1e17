/**
 * A C struct of bpf/*.h declared in TypeScript member by member, in the C order and with
 * the C types. Offsets and size follow C's natural alignment, as clang lays the struct out
 * for the BPF target, and the declaration is also the struct's codec: it reads and writes
 * the members at those offsets.
 * src/bpf/types.test.ts checks every declared struct against the compiled objects' BTF,
 * member by member (name, offset, size), so the two sides cannot drift apart silently.
 */
import type { Codec } from './map.js';

type Scalar = 'u8' | 'u16' | 'u32' | 'u64';
/** A member's C type: a scalar, a u8 or u64 array, or a nested struct. */
export type MemberType = Scalar | `u8[${number}]` | `u64[${number}]` | CStruct<Members>;
export type Members = Record<string, MemberType>;

/** snake_case member name → the camelCase field of the TypeScript value. */
type Camel<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
type ValueOf<T> = T extends 'u64'
  ? bigint
  : T extends Scalar
    ? number
    : T extends `u64[${number}]`
      ? bigint[]
      : Uint8Array;

/** The TypeScript value of a struct: its members but the `_pad*` ones, camelCased. */
export type StructValue<S> =
  S extends CStruct<infer M>
    ? { [K in keyof M & string as K extends `_${string}` ? never : Camel<K>]: ValueOf<M[K]> }
    : never;

export interface Member {
  /** As in the C declaration (snake_case). */
  name: string;
  offset: number;
  size: number;
}

/** A struct's layout, and the codec that reads and writes its value at those offsets. */
export interface CStruct<M extends Members> extends Codec<StructValue<CStruct<M>>> {
  /** The C struct's tag, as BTF names it. */
  readonly name: string;
  readonly size: number;
  readonly align: number;
  readonly members: readonly Member[];
  /** Byte offset of each member. */
  readonly offset: { readonly [K in keyof M]: number };
}

const SCALAR_SIZE: Record<Scalar, number> = { u8: 1, u16: 2, u32: 4, u64: 8 };

function sizeAlign(type: MemberType): { size: number; align: number } {
  if (typeof type !== 'string') return { size: type.size, align: type.align };
  const m = /^(u8|u16|u32|u64)(?:\[(\d+)\])?$/.exec(type);
  if (!m) throw new Error(`unknown C member type ${type}`);
  const one = SCALAR_SIZE[m[1] as Scalar];
  return { size: one * Number(m[2] ?? 1), align: one };
}

const roundUp = (n: number, align: number) => Math.ceil(n / align) * align;

const camel = (name: string) => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

type Field = { key: string; at: number; type: MemberType; size: number };

function write(f: Field, v: unknown, b: Buffer, o: number): void {
  switch (f.type) {
    case 'u8':
      return void b.writeUInt8(v as number, o);
    case 'u16':
      return void b.writeUInt16LE(v as number, o);
    case 'u32':
      return void b.writeUInt32LE(v as number, o);
    case 'u64':
      return void b.writeBigUInt64LE(v as bigint, o);
  }
  if (typeof f.type === 'string' && f.type.startsWith('u64[')) {
    (v as bigint[]).forEach((x, i) => {
      b.writeBigUInt64LE(x, o + i * 8);
    });
    return;
  }
  const bytes = v as Uint8Array;
  if (bytes.length > f.size) throw new Error(`${f.key}: ${bytes.length} bytes, more than ${f.size}`);
  b.set(bytes, o);
}

function read(f: Field, b: Buffer, o: number): unknown {
  switch (f.type) {
    case 'u8':
      return b.readUInt8(o);
    case 'u16':
      return b.readUInt16LE(o);
    case 'u32':
      return b.readUInt32LE(o);
    case 'u64':
      return b.readBigUInt64LE(o);
  }
  if (typeof f.type === 'string' && f.type.startsWith('u64['))
    return Array.from({ length: f.size / 8 }, (_, i) => b.readBigUInt64LE(o + i * 8));
  return Uint8Array.from(b.subarray(o, o + f.size));
}

/** Lays the members out as C does; padding members (`_pad*`) are written as zeroes. */
export function cStruct<const M extends Members>(name: string, types: M): CStruct<M> {
  const members: Member[] = [];
  const offset: Record<string, number> = {};
  const fields: Field[] = [];
  let at = 0;
  let align = 1;
  for (const [member, type] of Object.entries(types)) {
    const t = sizeAlign(type);
    at = roundUp(at, t.align);
    members.push({ name: member, offset: at, size: t.size });
    offset[member] = at;
    if (!member.startsWith('_')) fields.push({ key: camel(member), at, type, size: t.size });
    at += t.size;
    align = Math.max(align, t.align);
  }
  const size = roundUp(at, align);
  return {
    name,
    size,
    align,
    members,
    offset: offset as CStruct<M>['offset'],
    encode: (value, b, o) => {
      b.fill(0, o, o + size);
      const v = value as Record<string, unknown>;
      for (const f of fields) write(f, v[f.key], b, o + f.at);
    },
    decode: (b, o) => {
      const v: Record<string, unknown> = {};
      for (const f of fields) v[f.key] = read(f, b, o + f.at);
      return v as StructValue<CStruct<M>>;
    },
  };
}
