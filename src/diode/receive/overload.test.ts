import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OverloadMonitor, type OverloadSample } from './overload.js';

function monitor() {
  const said: { kind: string; message: string }[] = [];
  const m = new OverloadMonitor({
    overloaded: (message) => said.push({ kind: 'overloaded', message }),
    recovered: (message) => said.push({ kind: 'recovered', message }),
  });
  let s: OverloadSample = {
    at: 0,
    datagrams: 0,
    bytes: 0,
    kernelDrops: 0,
    queueDrops: 0,
    fecFailed: 0,
    mainPauseMs: 0,
  };
  /** One second: `arrived` datagrams of 1472 bytes, and what was dropped. */
  const second = (arrived: number, drops: Partial<OverloadSample> = {}) => {
    s = {
      at: s.at + 1000,
      datagrams: s.datagrams + arrived,
      bytes: s.bytes + arrived * 1472,
      kernelDrops: s.kernelDrops + (drops.kernelDrops ?? 0),
      queueDrops: s.queueDrops + (drops.queueDrops ?? 0),
      fecFailed: s.fecFailed + (drops.fecFailed ?? 0),
      mainPauseMs: drops.mainPauseMs ?? 5,
    };
    m.sample(s);
  };
  return { m, said, second };
}

test('a receiver that drops nothing is never reported overloaded, whatever the link lost', () => {
  const { m, said, second } = monitor();
  for (let i = 0; i < 5; i++) second(80_000, { fecFailed: 1 });
  assert.deepEqual(said, []);
  const st = m.status();
  assert.equal(st.now, false);
  assert.equal(st.episodes, 0);
  assert.equal(st.rateMbit, 969, '80,000 datagrams of 1472 bytes + 42 on the wire a second');
});

test('local drops are reported at once with the offered rate and why; a long overload every 10 s; then the recovery', () => {
  const { m, said, second } = monitor();
  second(50_000);
  second(50_000, { kernelDrops: 30_000, queueDrops: 2_000, fecFailed: 3, mainPauseMs: 250 });
  assert.equal(said.length, 1);
  assert.equal(
    said[0]!.message,
    'receiver overloaded at 993.2 Mbit/s: 30000 datagrams dropped by the kernel (socket buffer full), ' +
      '2000 not processed in time (the frame path 250 ms behind at worst), 3 FEC blocks lost beyond repair in the last 1.0 s',
  );
  assert.equal(m.status().now, true);
  for (let i = 0; i < 9; i++) second(50_000, { queueDrops: 10 });
  assert.equal(said.length, 1, 'not again within 10 s');
  second(50_000, { queueDrops: 10 });
  assert.equal(said.length, 2);
  second(50_000);
  assert.deepEqual(said[2], {
    kind: 'recovered',
    message: 'receiver keeps up again after 11 s overloaded (32100 datagrams dropped by the receiver)',
  });
  const st = m.status();
  assert.equal(st.now, false);
  assert.equal(st.episodes, 1);
  assert.equal(st.kernelDrops, 30_000);
  assert.equal(st.queueDrops, 2_100);
  assert.equal(st.fecFailedWhileOverloaded, 3);
  assert.equal(st.lastMbit, 605.7);
});
