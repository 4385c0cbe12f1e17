import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { DECODE_OVERHEAD } from './fec-sizing.js';
import { decodeLdpc, denseRows, encodeParity } from './ldpc.js';

const T = 24;

/** A block's symbols by id: sources 0..k-1, then the r parities. */
function block(k: number, r: number) {
  const data = randomBytes(k * T);
  const parity = encodeParity(data, T, r);
  const symbol = (id: number) =>
    id < k ? data.subarray(id * T, (id + 1) * T) : parity.subarray((id - k) * T, (id - k + 1) * T);
  return { data, parity, symbol };
}

/** Decodes block `b` with the ids in `lost` missing; checks every source returned against the original. */
function decodeWithout(k: number, r: number, b: ReturnType<typeof block>, lost: Set<number>): boolean {
  const ids = Array.from({ length: k + r }, (_, i) => i).filter((i) => !lost.has(i));
  const symbols = new Uint8Array(ids.length * T);
  ids.forEach((id, i) => {
    symbols.set(b.symbol(id), i * T);
  });
  const out = decodeLdpc(k, r, T, Uint32Array.from(ids), symbols);
  if (!out) return false;
  const missing = [...lost].filter((id) => id < k).sort((a, b) => a - b);
  assert.deepEqual(
    [...out.esis].sort((a, b) => a - b),
    missing,
  );
  out.esis.forEach((j, i) => {
    assert.deepEqual(Buffer.from(out.symbols.subarray(i * T, (i + 1) * T)), Buffer.from(b.symbol(j)));
  });
  return true;
}

test('parities are the staircase over the rows plus the dense rows: the same block encodes the same', () => {
  const a = randomBytes(100 * T);
  assert.deepEqual(encodeParity(a, T, 30), encodeParity(Buffer.from(a), T, 30));
  assert.notDeepEqual(encodeParity(a, T, 30), encodeParity(randomBytes(100 * T), T, 30));
  assert.equal(denseRows(30), 8);
  assert.equal(denseRows(5), 2);
});

test('the code is the wire format: these blocks encode to what every receiver in the field decodes', () => {
  // The matrix is built from K and R alone on both ends: a change to it (the generator, N1,
  // the dense rows) breaks receivers already deployed and needs a new frame type or version.
  for (const [k, r, digest] of [
    [64, 24, '5f4bd047a68ded69b169ad03829ddbb9b899fd937fdae784d1f0efc7f34ff803'],
    [4096, 110, '9315b03fd15791985535e496c29f1f6bf03dd3c918a58f4b5d1407cd15b48490'],
  ] as const) {
    const data = Uint8Array.from({ length: k * 8 }, (_, i) => (i * 131 + (i >> 8)) & 0xff);
    assert.equal(
      createHash('sha256')
        .update(encodeParity(data, 8, r))
        .digest('hex'),
      digest,
      `K = ${k}, R = ${r}`,
    );
  }
});

test('every single lost symbol of a block comes back, whichever it is', () => {
  for (const [k, r] of [
    [1, 1],
    [7, 3],
    [64, 24],
    [300, 40],
  ] as const) {
    const b = block(k, r);
    for (let id = 0; id < k + r; id++)
      assert.ok(decodeWithout(k, r, b, new Set([id])), `K = ${k}, R = ${r}: symbol ${id} alone lost`);
  }
});

test('round trip: random losses with the decode overhead to spare always decode, right', () => {
  const k = 1024;
  const r = 60;
  const b = block(k, r);
  const e = r - DECODE_OVERHEAD.ldpc;
  for (let n = 0; n < 40; n++) {
    const lost = new Set<number>();
    while (lost.size < e) lost.add(Math.floor(Math.random() * (k + r)));
    assert.ok(decodeWithout(k, r, b, lost), `${e} of ${k + r} lost`);
  }
});

test('too few symbols is no answer, not a wrong one; nothing lost is an empty answer', () => {
  const k = 50;
  const r = 10;
  const b = block(k, r);
  assert.equal(decodeWithout(k, r, b, new Set(Array.from({ length: r + 1 }, (_, i) => i))), false);
  assert.ok(decodeWithout(k, r, b, new Set([k, k + 1])), 'parities lost only');
});

test('malformed input is refused with a reason, never decoded into something', () => {
  const k = 20;
  const r = 5;
  const b = block(k, r);
  const two = new Uint8Array(2 * T);
  two.set(b.symbol(0), 0);
  two.set(b.symbol(1), T);
  assert.throws(() => decodeLdpc(k, r, T, Uint32Array.from([0, k + r]), two), /beyond the block/);
  assert.throws(() => decodeLdpc(k, r, T, Uint32Array.from([3, 3]), two), /given twice/);
  assert.throws(() => decodeLdpc(k, r, T, Uint32Array.from([0]), two), /differ in number/);
  assert.throws(() => decodeLdpc(5000, r, T, Uint32Array.from([0, 1]), two), /LDPC block of 5000/);
  assert.throws(() => decodeLdpc(k, 0, T, Uint32Array.from([0, 1]), two), /with 0 parities/);
  assert.throws(() => decodeLdpc(k, r, 12, Uint32Array.from([0, 1]), new Uint8Array(24)), /multiple of 8/);
  assert.throws(() => encodeParity(new Uint8Array(10 * T), T, 0), RangeError);
});
