/**
 * Replays against the receiver, with auth, fed in process: recorded frames sent again after
 * the receiver restarted, after the link moved on by more than 2^31 frames, and with
 * `dedup: adjacent`; a corrupt epoch file; a state directory others can write.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { keyedDir, recvConfig, signed, startReceiver } from '../../../test/support/diode/signed.js';
import { PrivateDirError } from '../private-dir.js';
import { addressBytes, encodeUdpPrefix, FrameType, Importance } from '../protocol/frame.js';
import { EpochFileError, MAX_RESERVE_FRAMES } from './epoch-mark.js';
import { Receiver } from './receiver.js';

const DEST = 9; // UDP to 127.0.0.1:9 (discard); counted by the receiver as delivered

function setup(name: string, extra: Record<string, unknown> = {}) {
  const k = keyedDir(`tacmesh-${name}-`);
  const config = {
    auth: { keyFile: k.keyFile },
    tcp: { allow: [`127.0.0.1:${DEST}`] },
    stateDir: join(k.dir, 'state'),
    ...extra,
  };
  const udp = (linkSeq: number, epoch = 1000) =>
    signed(
      k.ring,
      { type: FrameType.Udp, importance: Importance.Low, epoch, linkSeq, session: 1, seq: linkSeq },
      Buffer.concat([encodeUdpPrefix(addressBytes('127.0.0.1'), DEST), Buffer.from(`datagram ${linkSeq}`)]),
    );
  return { ...k, config, udp };
}

const delivered = (r: Receiver) => r.stats().udp.delivered;

/** Runs `fn` on a fresh scenario, removing its directory after. */
async function scenario(
  name: string,
  extra: Record<string, unknown>,
  fn: (s: ReturnType<typeof setup>) => Promise<void> | void,
): Promise<void> {
  const s = setup(name, extra);
  try {
    await fn(s);
  } finally {
    s.close();
  }
}

/** Runs `fn` with a started receiver, stopped after. */
async function running(config: Record<string, unknown>, fn: (r: Receiver) => void): Promise<void> {
  const r = await startReceiver(config);
  try {
    fn(r);
  } finally {
    r.stop();
  }
}

test('frames recorded before a receiver restart are refused after it; the link goes on past the reserved mark', () =>
  scenario('replay-restart', {}, async (s) => {
    const recorded = Array.from({ length: 100 }, (_, i) => s.udp(i));
    await running(s.config, (first) => {
      for (const d of recorded) first.collector.receive(d);
      assert.equal(delivered(first), 100);
    });
    await running(s.config, (second) => {
      for (const d of recorded) second.collector.receive(d);
      assert.equal(delivered(second), 0, 'nothing recorded is delivered again');
      assert.equal(second.stats().link.auth.replay, 100);
      second.collector.receive(s.udp(MAX_RESERVE_FRAMES + 100));
      assert.equal(delivered(second), 1, 'a frame past the mark of the first run is new');
      second.collector.receive(s.udp(5, 999));
      assert.equal(delivered(second), 1, 'an older epoch is refused');
      assert.equal(second.stats().link.auth['old-epoch'], 1);
    });
  }));

test('a frame recorded more than 2^31 frames ago is refused, and the link is not blacked out', () =>
  scenario('replay-far', {}, (s) =>
    running(s.config, (r) => {
      const old = s.udp(5);
      r.collector.receive(old);
      r.collector.receive(s.udp(5 + 2 ** 31 + 1));
      assert.equal(delivered(r), 2);
      r.collector.receive(old);
      assert.equal(delivered(r), 2, 'the replayed frame is behind the window');
      r.collector.receive(s.udp(5 + 2 ** 31 + 2));
      assert.equal(delivered(r), 3, 'the next frame of the link still passes');
    }),
  ));

test('dedup: adjacent keeps the window’s replay check with auth', () =>
  scenario('replay-adjacent', { dedup: 'adjacent' }, (s) =>
    running(s.config, (r) => {
      const a = s.udp(1);
      r.collector.receive(a);
      r.collector.receive(s.udp(2));
      r.collector.receive(a); // not adjacent to its first arrival: Algorithm 1 alone lets it through
      assert.equal(delivered(r), 2);
    }),
  ));

test('an empty or garbled epoch file refuses the start, it does not read as epoch 0', () =>
  scenario('replay-epoch-file', {}, (s) => {
    mkdirSync(s.config.stateDir, { mode: 0o700 });
    for (const text of ['', 'garbage\n', '{"epoch": 5}\n']) {
      writeFileSync(join(s.config.stateDir, 'newest-epoch'), text);
      assert.throws(() => new Receiver(recvConfig(47999, s.config)), EpochFileError, JSON.stringify(text));
    }
  }));

test('a state directory that others may write refuses the start', () =>
  scenario('replay-state-dir', {}, (s) => {
    mkdirSync(s.config.stateDir, { mode: 0o700 });
    chmodSync(s.config.stateDir, 0o777);
    assert.throws(() => new Receiver(recvConfig(47999, s.config)), PrivateDirError);
    chmodSync(s.config.stateDir, 0o700);
    new Receiver(recvConfig(47999, s.config)).stop();
  }));

test('without auth and tcp.allow the receiver does not start unless insecure: true', () => {
  assert.throws(() => recvConfig(47999, {}), /fails closed/);
  assert.throws(() => recvConfig(47999, { auth: { keyFile: '/k' } }), /fails closed/);
  assert.equal(recvConfig(47999, { insecure: true }).insecure, true);
  assert.equal(recvConfig(47999, { auth: { keyFile: '/k' }, tcp: { allow: [] } }).insecure, false);
});
