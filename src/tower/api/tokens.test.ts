/**
 * Token checks leak neither a token's length nor its place in the file: every check compares
 * fixed-length digests against every entry, whatever was given. Observed through the one
 * comparison primitive (node:crypto's timingSafeEqual), not through time.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mock, test } from 'node:test';
import { createToken, Tokens } from './tokens.js';

test('a token is compared with every entry, as digests of one length, wherever it is and whatever its length', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tacmesh-tokens-'));
  try {
    const file = `${dir}/tokens.yaml`;
    const [first, , last] = ['a', 'b', 'c'].map((n) => createToken(file, n, 'viewer'));
    const tokens = Tokens.load(file);
    const compare = mock.method(crypto, 'timingSafeEqual');
    syncBuiltinESMExports();
    try {
      for (const given of [first, last, 'x', `${first}${first}`, (first as string).slice(0, -1)]) {
        compare.mock.resetCalls();
        const holder = tokens.check(given);
        assert.equal(compare.mock.callCount(), 3, 'every entry compared');
        for (const call of compare.mock.calls) {
          const [a, b] = call.arguments as [Buffer, Buffer];
          assert.equal(a.length, 32);
          assert.equal(b.length, 32);
        }
        assert.equal(holder?.name, given === first ? 'a' : given === last ? 'c' : undefined);
      }
    } finally {
      compare.mock.restore();
      syncBuiltinESMExports();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
