/** The bus's message format (pure logic; the real path is bus.test.ts, on real servers). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FlowRow, IngestBatch } from '../model.js';
import { BadBusMessage, decodeBatch, encodeBatch, nodeOfSubject, nodeSubject } from './codec.js';

function batch(node: string, n: number): IngestBatch {
  const flows = Array.from(
    { length: n },
    (_, i) => ({ seq: i + 1, src: `10.77.0.${i % 250}` }) as unknown as FlowRow,
  );
  return {
    node,
    firstSeq: 1,
    lastSeq: n + 1,
    flows,
    http: [],
    stats: [{ seq: n + 1 } as never],
    links: [],
    routes: [],
  };
}

test('a node name with dots is one subject token, and back', () => {
  assert.equal(nodeSubject('b1', 'alpha.brigade'), 'flows.b1.alpha_brigade');
  assert.equal(nodeOfSubject('flows.b1.alpha_brigade'), 'alpha.brigade');
});

test('a batch over the payload limit goes as parts under the limit, the same parts every time', () => {
  const b = batch('alpha', 1000);
  const whole = encodeBatch('b1', b, 1024 * 1024);
  assert.equal(whole.length, 1);
  assert.equal(whole[0]?.id, 'b1/alpha:1-1001');
  const parts = encodeBatch('b1', b, 8 * 1024);
  assert.ok(parts.length > 2);
  assert.ok(parts.every((p) => p.data.length <= 8 * 1024));
  assert.deepEqual(
    parts.map((p) => p.id),
    encodeBatch('b1', b, 8 * 1024).map((p) => p.id),
    'a resent batch has the same ids',
  );
  assert.equal(parts[0]?.id, `b1/alpha:1-1001/1of${parts.length}`);
  const back = parts.map((p) => decodeBatch('flows.b1.alpha', p.data));
  assert.deepEqual(
    back.flatMap((p) => [...p.flows, ...p.stats].map((r) => r.seq)),
    Array.from({ length: 1001 }, (_, i) => i + 1),
    'every record in exactly one part, in order',
  );
  assert.throws(() => encodeBatch('b1', batch('alpha', 1), 10), /one record of alpha is \d+ bytes/);
});

test('a message that is not one of ours is refused with the reason, never stored', () => {
  const ok = encodeBatch('b1', batch('alpha', 2), 1 << 20)[0]?.data as Uint8Array;
  const cases: [string, Uint8Array, RegExp][] = [
    ['flows.b1.alpha', new TextEncoder().encode('{'), /not JSON/],
    ['flows.b1.bravo', ok, /a batch of node "alpha" on the subject flows\.b1\.bravo/],
    [
      'flows.b1.alpha',
      new TextEncoder().encode('{"node":"alpha","firstSeq":1,"lastSeq":2}'),
      /flows is not a list/,
    ],
    [
      'flows.b1.alpha',
      new TextEncoder().encode(
        '{"node":"alpha","firstSeq":1,"lastSeq":2,"flows":[{}],"http":[],"stats":[],"links":[],"routes":[]}',
      ),
      /a record of flows has no seq/,
    ],
  ];
  for (const [subject, data, reason] of cases)
    assert.throws(
      () => decodeBatch(subject, data),
      (e: Error) => e instanceof BadBusMessage && reason.test(e.message),
    );
});
