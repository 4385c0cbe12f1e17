import assert from 'node:assert/strict';
import { decodeFrame } from '../../../src/diode/protocol/frame.js';
import { AdjacentDuplicateFilter } from '../../../src/diode/receive/dedup-adjacent.js';
import { SequenceWindow } from '../../../src/diode/receive/dedup-window.js';

/** Datagrams through both duplicate filters side by side: what each one drops as a copy. */
export function filterBoth(datagrams: Buffer[]) {
  const window = new SequenceWindow(1024);
  const adjacent = new AdjacentDuplicateFilter();
  let byWindow = 0;
  let byAdjacent = 0;
  for (const d of datagrams) {
    const f = decodeFrame(d);
    assert.ok(f.ok);
    if (window.accept(f.frame.linkSeq) === 'duplicate') byWindow++;
    if (adjacent.isDuplicate(d)) byAdjacent++;
  }
  return { byWindow, byAdjacent, lost: window.lost };
}
