import assert from 'node:assert/strict';
import { test } from 'node:test';
import { filterBoth } from '../../../test/support/diode/filter-both.js';
import { encodeFrame, FrameType, Importance } from '../protocol/frame.js';
import { SequenceWindow } from './dedup-window.js';

const frame = (linkSeq: number, copy: number, body = `frame ${linkSeq}`) =>
  encodeFrame(
    {
      type: FrameType.Data,
      flags: 0,
      importance: Importance.High,
      copy,
      epoch: 1,
      linkSeq,
      session: 1,
      seq: linkSeq,
      block: 0,
      keyId: 0,
    },
    Buffer.from(body),
  );

test('back-to-back copies: both filters catch them', () => {
  const r = filterBoth([frame(0, 0), frame(0, 1), frame(1, 0), frame(1, 1), frame(1, 2)]);
  assert.deepEqual(r, { byWindow: 3, byAdjacent: 3, lost: 0 });
});

test('copies out of order: the window filter catches them all, Algorithm 1 misses them', () => {
  // A B A' B' C A'' B'' C': what a sender that spreads copies in time puts on the link.
  const r = filterBoth([
    frame(0, 0),
    frame(1, 0),
    frame(0, 1),
    frame(1, 1),
    frame(2, 0),
    frame(0, 2),
    frame(1, 2),
    frame(2, 1),
  ]);
  assert.equal(r.byWindow, 5);
  assert.equal(r.byAdjacent, 0);
});

test('window: a frame recorded 2^31 or more frames ago is stale, never taken for one ahead', () => {
  const w = new SequenceWindow(1024);
  assert.equal(w.accept(5), 'new');
  assert.equal(w.accept(5 + 2 ** 31 + 1), 'new', 'far ahead: the window slides');
  assert.equal(w.accept(5), 'stale', 'the recorded frame, replayed: behind the window');
  assert.equal(w.accept(6 + 2 ** 31 + 1), 'new', 'the link goes on');
  const v = new SequenceWindow(1024);
  v.accept(2 ** 31 + 10);
  assert.equal(v.accept(9), 'stale', 'more than 2^31 behind: stale, not ahead');
  assert.equal(v.accept(2 ** 31 + 11), 'new');
});

test('window: stale frames, late frames, and frames lost in every copy are counted', () => {
  const w = new SequenceWindow(64);
  assert.equal(w.size, 64);
  assert.equal(w.accept(0), 'new');
  assert.equal(w.accept(0), 'duplicate');
  assert.equal(w.accept(2), 'new'); // 1 missing
  assert.equal(w.accept(1000), 'new'); // jump: 3..999 never seen, 1 too
  assert.equal(w.accept(5), 'stale', 'behind the window');
  assert.equal(w.accept(1000 - 63), 'new', 'inside the window, late: accepted once');
  assert.equal(w.accept(1000 - 63), 'duplicate');
  // Left the window unseen: 1, and 3..936 (937..1000 is the window now; 937 came late).
  assert.equal(w.lost, 1 + 934);
});
