import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { ROUTABLE_SQL, routable } from './routable.js';

const PAIRS: [string, string][] = [
  ['10.77.11.20', '10.77.11.10'],
  ['10.77.11.20', '10.77.99.10'],
  ['10.77.11.20', '255.255.255.255'],
  ['10.77.11.20', '224.0.0.117'],
  ['10.77.11.20', '239.1.2.3'],
  ['10.77.11.20', '240.0.0.1'],
  ['10.77.11.20', '22.4.0.1'],
  ['fe80::1', 'fe80::2'],
  ['fe80::1', 'ff02::1:6'],
  ['::', 'ff02::16'],
  ['2001:db8::1', '2001:db8::2'],
  ['2001:db8::1', 'ffff::1'],
  ['2001:db8::1', 'ff'],
];

test('the predicate and the SQL agree on which flows are routable', async () => {
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  for (const [src, dst] of PAIRS) {
    const reader = await db.runAndReadAll(`SELECT ${ROUTABLE_SQL} AS ok FROM (SELECT $1 AS src, $2 AS dst)`, [
      src,
      dst,
    ]);
    const sql = reader.getRowObjects()[0]?.ok;
    assert.equal(routable(src, dst), sql, `${src} → ${dst}`);
  }
  assert.equal(routable('10.77.11.20', '10.77.11.10'), true);
  assert.equal(routable('fe80::1', 'ff02::1:6'), false);
});
