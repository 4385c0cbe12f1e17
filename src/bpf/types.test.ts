import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { run } from '../shared/exec.js';
import type { CStruct, Member, Members } from './c-struct.js';
import { objectPath } from './paths.js';
import * as types from './types.js';

const BPF_DIR = new URL('../../bpf/', import.meta.url);

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number; bitfield_size?: number }[];
}

type BtfMember = Member & { bits?: number };

/** Every named struct of an object's BTF, its members as the compiler laid them out. */
async function btfStructs(program: string): Promise<Map<string, { size: number; members: BtfMember[] }>> {
  const { stdout } = await run('bpftool', ['-j', 'btf', 'dump', 'file', objectPath(program)]);
  const all = (JSON.parse(stdout) as { types: BtfType[] }).types;
  const byId = new Map(all.map((t) => [t.id, t]));
  const sizeOf = (id: number): number => {
    const t = byId.get(id);
    if (!t) throw new Error(`${program}: BTF type ${id} is missing`);
    if (t.kind === 'ARRAY') return (t.nr_elems ?? 0) * sizeOf(t.type_id ?? 0);
    if (t.kind === 'PTR') return 8;
    if (t.size !== undefined) return t.size; // INT, STRUCT, UNION, ENUM
    return sizeOf(t.type_id ?? 0); // TYPEDEF, CONST, VOLATILE, ...
  };
  const structs = new Map<string, { size: number; members: BtfMember[] }>();
  for (const t of all) {
    if (t.kind !== 'STRUCT' || t.name === '(anon)') continue;
    // A bit field keeps its width: no mirror declares one, so it never compares equal.
    const members = (t.members ?? []).map((m) => ({
      name: m.name,
      offset: m.bits_offset / 8,
      size: sizeOf(m.type_id),
      ...(m.bitfield_size ? { bits: m.bitfield_size } : {}),
    }));
    structs.set(t.name, { size: t.size ?? 0, members });
  }
  return structs;
}

/** A program's shared header (bpf/<program>.h) and the headers it includes, by file name. */
function headersOf(program: string): string[] {
  const found: string[] = [];
  const visit = (file: string) => {
    if (found.includes(file)) return;
    found.push(file);
    const text = readFileSync(new URL(file, BPF_DIR), 'utf8');
    for (const m of text.matchAll(/^#include "([\w.]+\.h)"/gm)) visit(m[1] ?? '');
  };
  visit(`${program}.h`);
  return found;
}

const structsIn = (header: string) =>
  [...readFileSync(new URL(header, BPF_DIR), 'utf8').matchAll(/^struct (\w+) \{/gm)].map((m) => m[1] ?? '');

/** Every struct mirror src/bpf/types.ts exports, by its C name. */
const mirrors = new Map(
  (Object.values(types) as unknown[])
    .filter((v): v is CStruct<Members> => typeof v === 'object' && v !== null && 'members' in v)
    .map((s) => [s.name, s]),
);

const programs = readdirSync(BPF_DIR)
  .filter((f) => f.endsWith('.bpf.c'))
  .map((f) => f.replace(/\.bpf\.c$/, ''));

test('every struct a program shares with TypeScript matches its mirror member by member in the BTF', async () => {
  for (const known of ['flowmon', 'linkem', 'qos'])
    assert.ok(programs.includes(known), `the scan finds ${known}`);
  const checked = new Set<string>();
  for (const program of programs) {
    const btf = await btfStructs(program);
    for (const header of headersOf(program)) {
      for (const name of structsIn(header)) {
        const mirror = mirrors.get(name);
        assert.ok(mirror, `struct ${name} (bpf/${header}) has no mirror in src/bpf/types.ts`);
        const compiled = btf.get(name);
        assert.ok(compiled, `struct ${name} (bpf/${header}) is not in ${program}.bpf.o's BTF`);
        assert.deepEqual(
          mirror.members,
          compiled.members,
          `struct ${name}: the mirror's members (name, offset, size) against ${program}'s BTF`,
        );
        assert.equal(mirror.size, compiled.size, `struct ${name}: size`);
        checked.add(name);
      }
    }
  }
  assert.deepEqual(
    [...mirrors.keys()].filter((name) => !checked.has(name)),
    [],
    'mirrors of structs no program header declares',
  );
  for (const name of ['flow_key', 'flow_value', 'http_event', 'flowmon_config', 'flowmon_counters'])
    assert.ok(checked.has(name), `flowmon's ${name} is checked`);
});

test("a codec writes each member at its offset, in the member's width, and zeroes the padding", () => {
  const s = types.qosRule;
  const value = {
    srcPortMin: 0x0102,
    srcPortMax: 0x0304,
    dstPortMin: 0x0506,
    dstPortMax: 0x0708,
    ifindex: 0x090a0b0c,
    priority: 0x0d0e0f10,
    protocol: 0x11,
    matchDscp: 0x12,
    setDscp: 0x13,
    policeAction: 0x14,
    policeDscp: 0x15,
    classIndex: 0x16,
    policeRate: 0x1718191a1b1c1d1en,
    policeBurst: 0x1f20212223242526n,
  };
  const buf = Buffer.alloc(s.size, 0xee);
  types.qosRule.encode(value, buf, 0);
  const camel = (n: string) => n.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  for (const m of s.members) {
    const bytes = buf.subarray(m.offset, m.offset + m.size);
    if (m.name.startsWith('_')) {
      assert.ok(
        bytes.every((b) => b === 0),
        `${m.name} is zeroed`,
      );
      continue;
    }
    const want = BigInt((value as Record<string, number | bigint>)[camel(m.name)] ?? -1);
    const got = m.size === 8 ? bytes.readBigUInt64LE() : BigInt(bytes.readUIntLE(0, m.size));
    assert.equal(got, want, `${m.name} at offset ${m.offset}, ${m.size} bytes`);
  }
  assert.deepEqual(types.qosRule.decode(buf, 0), value);
});
