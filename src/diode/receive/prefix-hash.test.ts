import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { PrefixHash } from './prefix-hash.js';

test('chunks stored in any order hash to the whole file; no digest while one is missing', () => {
  const chunkBytes = 1000;
  const file = randomBytes(chunkBytes * 50 + 123);
  const chunks = Math.ceil(file.length / chunkBytes);
  const chunk = (i: number) => file.subarray(i * chunkBytes, (i + 1) * chunkBytes);
  const stored = new Set<number>();
  let readBack = 0;
  const hash = new PrefixHash(chunks, (i, most) => {
    // At most 3 at a time, as a part file gives fewer than asked when they lie apart.
    const count = Math.min(most, 3);
    for (let j = i; j < i + count; j++) assert.ok(stored.has(j), `read back chunk ${j} before it was stored`);
    readBack += count;
    return { data: file.subarray(i * chunkBytes, (i + count) * chunkBytes), count };
  });
  // Everything but chunk 3 in a shuffled order, then chunk 3 (the one FEC rebuilt late).
  const order = [...Array(chunks).keys()].filter((i) => i !== 3).sort(() => Math.random() - 0.5);
  for (const i of [...order, 3]) {
    assert.equal(hash.digest(), undefined);
    stored.add(i);
    hash.add(i, chunk(i), (j) => stored.has(j));
  }
  assert.equal(hash.digest(), createHash('sha256').update(file).digest('hex'));
  assert.ok(readBack >= chunks - 4, `chunks after the late one were read back (${readBack})`);
});
