import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import {
  decodeReflector,
  decodeSender,
  ERROR_ESTIMATE_SYNCED,
  encodeReflector,
  encodeSender,
  readNtp,
  STAMP_PACKET_BYTES,
  StampPacketError,
} from './packet.js';
import { StampReflector } from './reflector.js';
import { StampSender } from './sender.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('packets: the RFC 8762 unauthenticated layout, 44 bytes, NTP timestamps to the nanosecond', () => {
  const txNs = 1_796_000_000_123_456_789n;
  const s = encodeSender({ seq: 0xfffffffe, txNs, errorEstimate: ERROR_ESTIMATE_SYNCED });
  assert.equal(s.length, STAMP_PACKET_BYTES);
  assert.equal(s.readUInt32BE(0), 0xfffffffe);
  assert.equal(s.readUInt32BE(4), Number(txNs / 1_000_000_000n + 2_208_988_800n), 'NTP seconds since 1900');
  assert.ok(
    s.subarray(14).every((b) => b === 0),
    'MBZ',
  );
  const back = decodeSender(s);
  assert.equal(back.seq, 0xfffffffe);
  assert.ok(back.txNs - txNs <= 1n && txNs - back.txNs <= 1n, 'a 2^-32 s fraction keeps the nanosecond');
  const r = encodeReflector({
    seq: 7,
    txNs: txNs + 2000n,
    errorEstimate: ERROR_ESTIMATE_SYNCED,
    rxNs: txNs + 1000n,
    senderSeq: 9,
    senderTxNs: txNs,
    senderErrorEstimate: ERROR_ESTIMATE_SYNCED,
    senderTtl: 64,
  });
  assert.equal(r.length, STAMP_PACKET_BYTES);
  assert.equal(r.readUInt32BE(24), 9, 'session-sender sequence number at offset 24');
  assert.equal(readNtp(r, 16) - readNtp(r, 28), 1000n, 'receive timestamp at 16, sender timestamp at 28');
  assert.equal(r[40], 64, 'session-sender TTL at 40');
  assert.deepEqual(
    { ...decodeReflector(r), txNs: 0n, rxNs: 0n, senderTxNs: 0n },
    {
      seq: 7,
      txNs: 0n,
      errorEstimate: ERROR_ESTIMATE_SYNCED,
      rxNs: 0n,
      senderSeq: 9,
      senderTxNs: 0n,
      senderErrorEstimate: ERROR_ESTIMATE_SYNCED,
      senderTtl: 64,
    },
  );
  assert.throws(() => decodeSender(Buffer.alloc(43)), StampPacketError);
  assert.throws(() => decodeReflector(Buffer.alloc(0)), StampPacketError);
});

/** A UDP relay on loopback that drops chosen datagrams each way, so each loss is known. */
async function lossyRelay(
  to: number,
  dropForward: (seq: number) => boolean,
  dropBackward: (n: number) => boolean,
) {
  const front = createSocket('udp4');
  const back = createSocket('udp4');
  let client: { address: string; port: number } | undefined;
  let reflections = 0;
  const dropped = { forward: 0, backward: 0 };
  front.on('message', (msg, from) => {
    client = from;
    if (dropForward(msg.readUInt32BE(0))) dropped.forward++;
    else back.send(msg, to, '127.0.0.1');
  });
  back.on('message', (msg) => {
    if (dropBackward(reflections++)) dropped.backward++;
    else if (client) front.send(msg, client.port, client.address);
  });
  await Promise.all([front, back].map((s) => new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))));
  return {
    port: front.address().port,
    dropped,
    close: () => Promise.all([front, back].map((s) => new Promise<void>((r) => s.close(() => r())))),
  };
}

test('loss each way is told apart: the stateful reflector numbers what it received', async () => {
  const reflector = await StampReflector.listen(0, '127.0.0.1');
  const relay = await lossyRelay(
    reflector.port,
    (seq) => seq % 5 === 2,
    (n) => n % 8 === 3,
  );
  const sender = await StampSender.open({
    peer: '127.0.0.1',
    port: relay.port,
    ratePps: 100,
    windowMs: 60_000,
  });
  try {
    sender.start();
    while (sender.stats().sent < 200) await sleep(50);
    sender.stop();
    await sleep(1500); // every probe settled: answered, or past the timeout
    const stats = sender.stats();
    await sender.close();
    const lostForward = Math.round((stats.lossForwardPct / 100) * stats.sent);
    const lostBackward = Math.round((stats.lossBackwardPct / 100) * stats.sent);
    // Probes lost after the last answer cannot be told apart: at most one here.
    assert.ok(
      Math.abs(lostForward - relay.dropped.forward) <= 1,
      `forward ${lostForward} vs ${relay.dropped.forward}`,
    );
    assert.ok(
      Math.abs(lostBackward - relay.dropped.backward) <= 1,
      `backward ${lostBackward} vs ${relay.dropped.backward}`,
    );
    assert.equal(stats.answered, stats.sent - relay.dropped.forward - relay.dropped.backward);
    // (the mean is no bound: a few slow answers of the relay can lift it past the p95)
    assert.ok(stats.rttMs && stats.rttMs.min >= 0 && stats.rttMs.min <= stats.rttMs.mean);
    assert.ok(stats.rttMs.min <= stats.rttMs.median && stats.rttMs.median <= stats.rttMs.p95);
    assert.ok(stats.jitterMs !== null && stats.jitterMs >= 0);
    assert.equal(reflector.counters.reflected, stats.sent - relay.dropped.forward);
  } finally {
    await relay.close();
    await reflector.close();
  }
});

test('no answer for the timeout: the link is down; answers again: up', async () => {
  const reflector = await StampReflector.listen(0, '127.0.0.1');
  const port = reflector.port;
  const sender = await StampSender.open({ peer: '127.0.0.1', port, ratePps: 20, timeoutMs: 300 });
  let again: StampReflector | undefined;
  try {
    sender.start();
    while (sender.stats().answered < 5) await sleep(20);
    assert.equal(sender.stats().down, false);
    await reflector.close();
    const cut = Date.now();
    while (!sender.stats().down) {
      assert.ok(Date.now() - cut < 30_000, 'never reported down'); // liveness bound
      await sleep(20);
    }
    again = await StampReflector.listen(port, '127.0.0.1');
    while (sender.stats().down) {
      assert.ok(Date.now() - cut < 60_000, 'never reported up again');
      await sleep(20);
    }
  } finally {
    await sender.close();
    await again?.close();
  }
});

test('probes sent before the neighbour first answers are not loss: the link is down, then up with none lost', async () => {
  // A port no one listens on yet: the reflector comes up half a second after the sender.
  const early = await StampReflector.listen(0, '127.0.0.1');
  const port = early.port;
  await early.close();
  const sender = await StampSender.open({ peer: '127.0.0.1', port, ratePps: 50, timeoutMs: 200 });
  let reflector: StampReflector | undefined;
  try {
    sender.start();
    await sleep(500);
    const before = sender.stats();
    assert.equal(before.down, true, 'no answer yet: down');
    assert.equal(before.sent, 0, 'nothing counted before the first answer');
    reflector = await StampReflector.listen(port, '127.0.0.1');
    while (sender.stats().answered < 20) await sleep(20);
    sender.stop();
    await sleep(400); // every probe settled
    const after = sender.stats();
    assert.equal(after.down, false);
    assert.equal(after.lossForwardPct + after.lossBackwardPct, 0, `loss ${JSON.stringify(after)}`);
    assert.equal(after.sent, after.answered);
  } finally {
    await sender.close();
    await reflector?.close();
  }
});

test('garbage at either end is counted and dropped; nothing crashes', async () => {
  const reflector = await StampReflector.listen(0, '127.0.0.1');
  const sender = await StampSender.open({ peer: '127.0.0.1', port: reflector.port, ratePps: 50 });
  const junk = createSocket('udp4');
  try {
    await new Promise<void>((r) => junk.bind(0, '127.0.0.1', () => r()));
    for (let i = 0; i < 100; i++) junk.send(Buffer.alloc(i % 44), reflector.port, '127.0.0.1');
    const senderPort = sender.udp.address().port;
    for (let i = 0; i < 100; i++) junk.send(Buffer.alloc(i % 44), senderPort, '127.0.0.1');
    // A reflection of a probe never sent is ignored.
    junk.send(
      encodeReflector({
        seq: 0,
        txNs: 0n,
        errorEstimate: 0,
        rxNs: 0n,
        senderSeq: 123_456,
        senderTxNs: 0n,
        senderErrorEstimate: 0,
        senderTtl: 0,
      }),
      senderPort,
      '127.0.0.1',
    );
    sender.start();
    while (
      sender.stats().answered < 5 ||
      reflector.counters.malformed < 100 ||
      sender.stats().malformed < 100
    )
      await sleep(20);
    assert.equal(reflector.counters.malformed, 100);
    assert.equal(sender.stats().malformed, 100);
    assert.equal(sender.stats().down, false);
  } finally {
    await new Promise<void>((r) => junk.close(() => r()));
    await sender.close();
    await reflector.close();
  }
});
