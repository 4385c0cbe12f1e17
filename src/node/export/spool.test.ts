import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { RecordBatch } from '../../proto/index.js';
import { Spool } from './spool.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync('/tmp/tacmesh-spool-');
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A batch of `n` stats records from `first`. */
function batch(first: number, n: number): RecordBatch {
  const stats = Array.from({ length: n }, (_, i) => ({ seq: first + i, timeMs: 1000 + i, packets: 7 }));
  return { firstSeq: first, lastSeq: first + n - 1, flows: [], http: [], stats };
}

function drain(s: Spool): number[] {
  const seqs: number[] = [];
  for (let b = s.next(0); b; b = s.next(Number(b.lastSeq))) seqs.push(Number(b.firstSeq));
  return seqs;
}

test('batches come back in order after a reopen; acknowledged ones never again', () => {
  const dir = tmp();
  const s = new Spool(dir, { segmentBytes: 200 });
  for (let i = 0; i < 10; i++) s.append(batch(1 + i * 3, 3));
  assert.equal(s.records, 30);
  s.ack(9);
  assert.equal(s.records, 21);
  assert.deepEqual(drain(s), [10, 13, 16, 19, 22, 25, 28]);
  s.close();
  const again = new Spool(dir, { segmentBytes: 200 });
  assert.equal(again.records, 21);
  assert.deepEqual(drain(again), [10, 13, 16, 19, 22, 25, 28]);
  assert.deepEqual(again.next(0)?.stats?.[0], { seq: 10, timeMs: 1000, packets: 7 }, 'contents intact');
  again.ack(30);
  assert.equal(again.records, 0);
  assert.equal(again.next(0), undefined);
  assert.ok(readdirSync(dir).filter((f) => f.endsWith('.seg')).length <= 1, 'acknowledged segments deleted');
});

test('a torn frame at the tail is cut off; what came before survives', () => {
  const dir = tmp();
  const s = new Spool(dir);
  s.append(batch(1, 2));
  s.append(batch(3, 2));
  s.close();
  const [seg] = readdirSync(dir).filter((f) => f.endsWith('.seg'));
  appendFileSync(join(dir, seg as string), Buffer.from([200, 0, 0, 0, 1, 2, 3, 4, 5]));
  const again = new Spool(dir);
  assert.deepEqual(drain(again), [1, 3]);
  again.append(batch(5, 1));
  assert.deepEqual(drain(again), [1, 3, 5]);
});

test('over its bound the oldest go, and the loss is counted and kept across a reopen', () => {
  const dir = tmp();
  const s = new Spool(dir, { maxBytes: 2000, segmentBytes: 400 });
  for (let i = 0; i < 40; i++) s.append(batch(1 + i * 2, 2));
  assert.ok(Spool.diskBytes(dir) <= 2000 + 400, `bounded: ${Spool.diskBytes(dir)} bytes`);
  assert.ok(s.lost > 0, 'some records lost');
  assert.equal(s.lost + s.records, 80, 'every record either still spooled or counted as lost');
  const first = Number(s.next(0)?.firstSeq);
  assert.equal(first, s.lost + 1, 'the oldest went, the newest stayed');
  s.close();
  const again = new Spool(dir, { maxBytes: 2000, segmentBytes: 400 });
  assert.equal(again.lost, s.lost);
  assert.equal(again.records, s.records);
});

test('a long backlog drains in order (read, then acknowledged); the time it takes is printed', () => {
  const dir = tmp();
  const s = new Spool(dir, { fsync: false, maxBytes: 1 << 30 });
  const N = 20_000;
  for (let i = 0; i < N; i++) s.append(batch(1 + i * 10, 10));
  const t0 = performance.now();
  let n = 0;
  let expected = 1;
  for (let b = s.next(0); b; b = s.next(Number(b.lastSeq))) {
    assert.equal(Number(b.firstSeq), expected);
    expected += 10;
    n++;
    if (n % 100 === 0) s.ack(Number(b.lastSeq));
  }
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ batches: n, ms: Math.round(ms), batchesPerS: Math.round(n / (ms / 1000)) }));
  assert.equal(n, N);
});
