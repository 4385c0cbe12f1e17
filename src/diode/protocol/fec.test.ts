import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FecDecoder, FecEncoder, type FecEncoderOptions } from './fec.js';
import { poissonTail, repairsFor } from './fec-sizing.js';
import {
  decodeFrame,
  encodeHeader,
  type Frame,
  FrameFlag,
  FrameType,
  Importance,
  SEQ_LIMIT,
  SYMBOL_HEADER_BYTES,
} from './frame.js';
import { encodeRepairs } from './raptorq.js';

const T = 1424;

test('sizing: repairs grow with loss and burst length, overhead shrinks with block length', () => {
  const s = { loss: 0.05, burst: 1, margin: 0.1, failure: 1e-5 };
  assert.equal(repairsFor(1000, { ...s, loss: 0 }), 0);
  assert.ok(repairsFor(1024, s) > 1024 * 0.05 * 1.1, 'more than the mean loss');
  assert.ok(repairsFor(2048, s) / 2048 < repairsFor(256, s) / 256);
  assert.ok(repairsFor(2048, s) / 2048 < 0.09, `5 %: ${repairsFor(2048, s)} for 2048`);
  assert.ok(repairsFor(1024, { ...s, burst: 20 }) > repairsFor(1024, s));
  assert.ok(Math.abs(poissonTail(10, 10) - 0.417) < 0.001);
});

test('sizing holds its failure rate: simulated blocks at the expected loss rarely fail', () => {
  const s = { loss: 0.05, burst: 1, margin: 0, failure: 1e-3 };
  const k = 256;
  const r = repairsFor(k, s);
  let failed = 0;
  const blocks = 20_000;
  for (let b = 0; b < blocks; b++) {
    let lost = 0;
    for (let i = 0; i < k + r; i++) if (Math.random() < s.loss) lost++;
    if (lost > r - 2) failed++;
  }
  assert.ok(failed / blocks <= 2e-3, `${failed} of ${blocks} blocks failed with R = ${r}`);
  // A fixed overhead equal to the mean loss fails about half the time: the cliff sizing avoids.
  let cliff = 0;
  for (let b = 0; b < 2000; b++) {
    let lost = 0;
    for (let i = 0; i < k * 1.05; i++) if (Math.random() < s.loss) lost++;
    if (lost > k * 0.05 - 2) cliff++;
  }
  assert.ok(cliff > 600, `mean-loss overhead failed ${cliff} of 2000`);
});

function frames(n: number, first: number, epoch: number): { header: Buffer; payload: Buffer }[] {
  return Array.from({ length: n }, (_, i) => {
    const payload = randomBytes(1 + ((i * 97) % (T - SYMBOL_HEADER_BYTES)));
    const header = encodeHeader(
      {
        type: FrameType.Data,
        flags: FrameFlag.Fec,
        importance: Importance.High,
        copy: 0,
        epoch,
        linkSeq: first + i,
        session: 1,
        seq: i,
        block: first,
        keyId: 0,
      },
      payload.length,
    );
    return { header, payload };
  });
}

function encodeBlock(
  src: { header: Buffer; payload: Buffer }[],
  options: Partial<FecEncoderOptions> = {},
): Promise<{ first: number; k: number; r: number; repairs: { esi: number; symbol: Buffer }[] }> {
  return new Promise((resolve) => {
    const enc = new FecEncoder({
      symbolBytes: T,
      blockFrames: src.length,
      maxDelayMs: 1000,
      sizing: { loss: 0.05, burst: 1, margin: 0.1, failure: 1e-5 },
      inline: true,
      ...options,
      onRepairs: (b) => {
        void enc.stop();
        resolve(b);
      },
    });
    for (const f of src) {
      enc.blockFor(f.header.readUInt32BE(12));
      enc.add(f.header, f.payload);
    }
  });
}

function repairFrame(epoch: number, first: number, k: number, r: number, esi: number, symbol: Buffer): Frame {
  return {
    type: FrameType.Repair,
    flags: FrameFlag.Fec,
    importance: Importance.High,
    copy: 0,
    epoch,
    linkSeq: esi,
    session: (k << 16) | r,
    seq: esi,
    block: first,
    keyId: 0,
    payload: symbol,
    tag: Buffer.alloc(0),
  };
}

test('a block with lost sources is rebuilt from its repairs, frame for frame; its spare is reported', async () => {
  const epoch = 77;
  const first = SEQ_LIMIT - 300; // the last block an epoch may have
  const src = frames(300, first, epoch);
  const block = await encodeBlock(src);
  assert.equal(block.k, 300);
  assert.equal(block.r, block.repairs.length);
  const recovered: Frame[] = [];
  const dec = new FecDecoder({ holdMs: 0, onRecovered: (_e, f) => recovered.push(f) });
  const lost = new Set<number>();
  while (lost.size < 15) lost.add(Math.floor(Math.random() * 300));
  src.forEach((f, i) => {
    if (lost.has(i)) return;
    const d = decodeFrame(Buffer.concat([f.header, f.payload]));
    assert.ok(d.ok);
    dec.source(d.frame, Buffer.concat([f.header, f.payload]));
  });
  // Two repairs lost too.
  for (const x of block.repairs.slice(2))
    dec.repair(repairFrame(epoch, first, block.k, block.r, x.esi, x.symbol));
  assert.equal(recovered.length, 15);
  for (const f of recovered) {
    const i = (f.linkSeq - first) >>> 0;
    assert.ok(lost.has(i));
    assert.deepEqual(f.payload, src[i]!.payload);
    assert.equal(f.seq, i);
  }
  dec.tick(() => true);
  const s = dec.snapshot();
  assert.equal(s.repaired, 1);
  assert.equal(s.framesRecovered, 15);
  assert.equal(s.minSpare, block.r - 2 - 15);
  assert.equal(s.recent[0]?.lost, 15);
});

test('a block that lost more than its repairs fails, counted, with nothing made up', async () => {
  const epoch = 5;
  const src = frames(100, 1000, epoch);
  const block = await encodeBlock(src);
  const recovered: Frame[] = [];
  const dec = new FecDecoder({ holdMs: 0, onRecovered: (_e, f) => recovered.push(f) });
  const lostCount = block.r + 3;
  src.slice(lostCount).forEach((f) => {
    const d = decodeFrame(Buffer.concat([f.header, f.payload]));
    assert.ok(d.ok);
    dec.source(d.frame, Buffer.concat([f.header, f.payload]));
  });
  for (const x of block.repairs) dec.repair(repairFrame(epoch, 1000, block.k, block.r, x.esi, x.symbol));
  dec.tick(() => true);
  assert.equal(recovered.length, 0);
  const s = dec.snapshot();
  assert.equal(s.failed, 1);
  assert.equal(s.framesUnrecovered, lostCount);
  assert.equal(s.minSpare, -3);
  assert.equal(s.spareHistogram.failed, 1);
});

test('the worker thread encodes the same repairs as the main thread', async () => {
  const src = frames(64, 10, 1);
  const inline = await encodeBlock(src);
  const worker = await encodeBlock(src, { inline: false });
  assert.equal(worker.repairs.length, inline.repairs.length);
  worker.repairs.forEach((x, i) => {
    assert.equal(x.esi, inline.repairs[i]!.esi);
    assert.deepEqual(x.symbol, inline.repairs[i]!.symbol);
  });
});

test('raptorq: source symbols are the block itself (one source block), repairs start at the padded K', () => {
  const data = randomBytes(7 * T);
  const repairs = encodeRepairs(data, T, 3);
  assert.equal(repairs.length, 3);
  assert.ok(repairs[0]!.esi >= 7);
  assert.throws(() => encodeRepairs(randomBytes(5000 * T), T, 1), RangeError);
});
