import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FecDecoder, FecEncoder, type FecEncoderOptions, QUIET_MS } from './fec.js';
import { codeFor, type FecCode, repairType } from './fec-code.js';
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

type Block = {
  first: number;
  k: number;
  r: number;
  code: FecCode;
  repairs: { esi: number; symbol: Buffer }[];
};

function encodeBlock(
  src: { header: Buffer; payload: Buffer }[],
  options: Partial<FecEncoderOptions> = {},
): Promise<Block> {
  return new Promise((resolve) => {
    const enc = new FecEncoder({
      code: 'raptorq',
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

function repairFrame(epoch: number, block: Block, x: { esi: number; symbol: Buffer }): Frame {
  return {
    type: repairType(block.code),
    flags: FrameFlag.Fec,
    importance: Importance.High,
    copy: 0,
    epoch,
    linkSeq: x.esi,
    session: (block.k << 16) | block.r,
    seq: x.esi,
    block: block.first,
    keyId: 0,
    payload: x.symbol,
    tag: Buffer.alloc(0),
  };
}

/** Feeds the sources not in `lost` and the repairs from the `skipRepairs`-th on. */
function feed(
  dec: FecDecoder,
  epoch: number,
  src: { header: Buffer; payload: Buffer }[],
  block: Block,
  lost: Set<number>,
  skipRepairs = 0,
): void {
  src.forEach((f, i) => {
    if (lost.has(i)) return;
    const datagram = Buffer.concat([f.header, f.payload]);
    const d = decodeFrame(datagram);
    assert.ok(d.ok);
    dec.source(d.frame, datagram);
  });
  for (const x of block.repairs.slice(skipRepairs)) dec.repair(repairFrame(epoch, block, x));
}

const idle = () => new Promise((r) => setTimeout(r, QUIET_MS + 5));

for (const code of ['raptorq', 'ldpc'] as const) {
  test(`${code}: a block with lost sources is rebuilt from its repairs, frame for frame; its spare is reported`, async () => {
    const epoch = 77;
    const first = SEQ_LIMIT - 300; // the last block an epoch may have
    const src = frames(300, first, epoch);
    const block = await encodeBlock(src, { code });
    assert.equal(block.k, 300);
    assert.equal(block.r, block.repairs.length);
    assert.equal(block.r, repairsFor(300, { loss: 0.05, burst: 1, margin: 0.1, failure: 1e-5 }, code));
    const recovered: Frame[] = [];
    const dec = new FecDecoder({ holdMs: 1000, inline: true, onRecovered: (_e, f) => recovered.push(f) });
    const lost = new Set<number>();
    while (lost.size < 15) lost.add(Math.floor(Math.random() * 300));
    feed(dec, epoch, src, block, lost, 2); // two repairs lost too
    assert.equal(recovered.length, 0, 'not before the block went quiet: more repairs may come');
    await idle();
    dec.tick(() => true);
    assert.equal(recovered.length, 15);
    for (const f of recovered) {
      const i = (f.linkSeq - first) >>> 0;
      assert.ok(lost.has(i));
      assert.deepEqual(f.payload, src[i]!.payload);
      assert.equal(f.seq, i);
      assert.equal(f.type, FrameType.Data);
    }
    await new Promise((r) => setTimeout(r, 5));
    dec.tick(() => false); // the epoch ends: the block retires
    const s = dec.snapshot();
    assert.equal(s.repaired, 1);
    assert.equal(s.framesRecovered, 15);
    assert.equal(s.minSpare, block.r - 2 - 15);
    assert.equal(s.recent[0]?.lost, 15);
  });

  test(`${code}: with every repair in, the block is rebuilt at once`, async () => {
    const src = frames(64, 0, 3);
    const block = await encodeBlock(src, { code });
    const recovered: Frame[] = [];
    const dec = new FecDecoder({ holdMs: 1000, inline: true, onRecovered: (_e, f) => recovered.push(f) });
    feed(dec, 3, src, block, new Set([0, 63]));
    assert.deepEqual(
      recovered.map((f) => f.seq).sort((a, b) => a - b),
      [0, 63],
    );
  });

  test(`${code}: a block that lost more than its repairs fails, counted, with nothing made up`, async () => {
    const epoch = 5;
    const src = frames(100, 1000, epoch);
    const block = await encodeBlock(src, { code });
    const recovered: Frame[] = [];
    const dec = new FecDecoder({ holdMs: 0, inline: true, onRecovered: (_e, f) => recovered.push(f) });
    const lostCount = block.r + 3;
    feed(dec, epoch, src, block, new Set(Array.from({ length: lostCount }, (_, i) => i)));
    await idle();
    dec.tick(() => true);
    assert.equal(recovered.length, 0);
    const s = dec.snapshot();
    assert.equal(s.failed, 1);
    assert.equal(s.framesUnrecovered, lostCount);
    assert.equal(s.minSpare, -3);
    assert.equal(s.spareHistogram.failed, 1);
  });

  test(`${code}: the worker thread encodes the same repairs as the main thread, and decodes as it does`, async () => {
    const src = frames(64, 10, 1);
    const inline = await encodeBlock(src, { code });
    const worker = await encodeBlock(src, { code, inline: false });
    assert.equal(worker.repairs.length, inline.repairs.length);
    worker.repairs.forEach((x, i) => {
      assert.equal(x.esi, inline.repairs[i]!.esi);
      assert.deepEqual(x.symbol, inline.repairs[i]!.symbol);
    });
    const recovered: Frame[] = [];
    const dec = new FecDecoder({ holdMs: 1000, onRecovered: (_e, f) => recovered.push(f) });
    try {
      feed(dec, 1, src, worker, new Set([5, 6, 7]));
      for (let i = 0; i < 200 && recovered.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(
        recovered.map((f) => f.seq).sort((a, b) => a - b),
        [5, 6, 7],
      );
      assert.equal(dec.snapshot().decodes, 1);
    } finally {
      await dec.stop();
    }
  });
}

test('repairs that come after their block was given up are late, not a failed block', async () => {
  const src = frames(50, 0, 9);
  const block = await encodeBlock(src, { code: 'ldpc' });
  let now = 0;
  const dec = new FecDecoder({ holdMs: 100, inline: true, now: () => now, onRecovered: () => undefined });
  feed(dec, 9, src, { ...block, repairs: [] }, new Set());
  now = 200;
  dec.tick(() => true);
  for (const x of block.repairs) dec.repair(repairFrame(9, block, x));
  now = 400;
  dec.tick(() => true);
  const s = dec.snapshot();
  assert.equal(s.failed, 0);
  assert.equal(s.unaccounted, 1, 'no repair told its K before it retired');
  assert.equal(s.late, block.repairs.length);
});

test('auto picks LDPC for low loss one at a time, RaptorQ for heavy loss or bursts', () => {
  assert.equal(codeFor('auto', 0.001, 1), 'ldpc');
  assert.equal(codeFor('auto', 0.02, 1), 'ldpc');
  assert.equal(codeFor('auto', 0.05, 1), 'raptorq');
  assert.equal(codeFor('auto', 0.01, 20), 'raptorq');
  assert.equal(codeFor('raptorq', 0.001, 1), 'raptorq');
});

test('raptorq: source symbols are the block itself (one source block), repairs start at the padded K', () => {
  const data = randomBytes(7 * T);
  const repairs = encodeRepairs(data, T, 3);
  assert.equal(repairs.length, 3);
  assert.ok(repairs[0]!.esi >= 7);
  assert.throws(() => encodeRepairs(randomBytes(5000 * T), T, 1), RangeError);
});

test('hostile repair frames are refused cleanly and counted: ids, K, R and T out of range, a block changing its K', async () => {
  const src = frames(40, 0, 4);
  const block = await encodeBlock(src, { code: 'ldpc' });
  const dec = new FecDecoder({ holdMs: 1000, inline: true, onRecovered: () => undefined });
  const x = block.repairs[0]!;
  const hostile: Frame[] = [
    { ...repairFrame(4, block, x), seq: block.k + block.r }, // beyond the block's parities
    { ...repairFrame(4, block, x), seq: 3 }, // a source's id
    { ...repairFrame(4, block, x), session: (5000 << 16) | 10 }, // K beyond 4096
    { ...repairFrame(4, block, x), session: (40 << 16) | 0 }, // no parities
    { ...repairFrame(4, block, x), payload: x.symbol.subarray(0, 100) }, // T not a multiple of 8
    { ...repairFrame(4, block, x), payload: Buffer.alloc(8) }, // T shorter than a symbol's header
    { ...repairFrame(4, block, x), type: FrameType.Data }, // not a repair type at all
  ];
  for (const f of hostile) dec.repair(f);
  assert.equal(dec.snapshot().malformed, hostile.length);
  dec.repair(repairFrame(4, block, x));
  dec.repair({ ...repairFrame(4, block, block.repairs[1]!), session: (41 << 16) | block.r }); // K changed
  assert.equal(dec.snapshot().malformed, hostile.length + 1);
  assert.equal(dec.snapshot().repairsReceived, 1);
});

for (const code of ['raptorq', 'ldpc'] as const)
  test(`${code}: a source that cannot be in its block (an id beyond K, longer than a symbol) is left out; the block still decodes`, async () => {
    const src = frames(40, 0, 8);
    const block = await encodeBlock(src, { code });
    const recovered: Frame[] = [];
    const dec = new FecDecoder({ holdMs: 1000, inline: true, onRecovered: (_e, f) => recovered.push(f) });
    const decoded = (datagram: Buffer) => {
      const d = decodeFrame(datagram);
      assert.ok(d.ok);
      return d.frame;
    };
    const forged = (linkSeq: number, bytes: number) => {
      const payload = randomBytes(bytes);
      const model = decoded(Buffer.concat([src[0]!.header, src[0]!.payload]));
      const datagram = Buffer.concat([encodeHeader({ ...model, linkSeq }, payload.length), payload]);
      return { frame: decoded(datagram), datagram };
    };
    // Before the repairs tell the block's K and T: an id K + 1 (a repair's, for RaptorQ), and a
    // payload longer than T.
    for (const f of [forged(41, 10), forged(3, T)]) dec.source(f.frame, f.datagram);
    feed(dec, 8, src, block, new Set([1, 2, 3]));
    await idle();
    dec.tick(() => true);
    assert.deepEqual(
      recovered.map((f) => f.seq).sort((a, b) => a - b),
      [1, 2],
    );
    assert.equal(dec.snapshot().malformed, 2);
  });

test('parities with forged content rebuild nothing that is not a frame; the decoder goes on', async () => {
  const src = frames(40, 0, 6);
  const block = await encodeBlock(src, { code: 'ldpc' });
  const recovered: Frame[] = [];
  const dec = new FecDecoder({ holdMs: 1000, inline: true, onRecovered: (_e, f) => recovered.push(f) });
  const forged = {
    ...block,
    repairs: block.repairs.map((x) => ({ esi: x.esi, symbol: Buffer.alloc(T, 0xff) })),
  };
  feed(dec, 6, src, forged, new Set([1, 2]));
  const s = dec.snapshot();
  assert.equal(s.decodes, 1);
  // A 0xff... symbol is no frame (type 255): refused, not delivered.
  assert.equal(recovered.length, 0);
  assert.equal(s.malformed, 2);
});
