import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { DlepModem } from '../../../testbed/radio/dlep-modem.js';
import {
  DlepDecodeError,
  decodeSignal,
  encodeMessage,
  encodeSignal,
  Item,
  item,
  Message,
  MessageReader,
  macOf,
  metricItems,
  metricsOf,
  Signal,
  Status,
  statusOf,
} from './codec.js';
import { type Destination, DlepRouter, discoverModem } from './router.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MAC = '02:77:00:00:01:02';
const metrics = {
  maxRxBps: 20_000_000n,
  maxTxBps: 20_000_000n,
  currentRxBps: 18_000_000n,
  currentTxBps: 18_000_000n,
  latencyUs: 5000n,
};

async function until<T>(what: string, fn: () => T | undefined, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms; // a liveness bound
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await sleep(10);
  }
}

test('codec: messages and signals round-trip; the stream splits at any byte; lies about lengths are refused', () => {
  const m = {
    type: Message.DestinationUp,
    items: [
      item.mac(MAC),
      item.ipv4('10.77.1.2'),
      ...metricItems(metrics),
      item.u8(Item.RelativeLinkQualityReceive, 90),
    ],
  };
  const wire = encodeMessage(m);
  assert.equal(wire.readUInt16BE(0), 7, 'Destination Up is message 7');
  assert.equal(wire.readUInt16BE(2), wire.length - 4);
  const reader = new MessageReader();
  const got = [...wire].flatMap((b) => reader.push(Buffer.from([b])));
  assert.equal(got.length, 1);
  assert.equal(macOf(got[0]!), MAC);
  assert.deepEqual(metricsOf(got[0]!), { ...metrics, rlqRx: 90 });

  const signal = encodeSignal({ type: Signal.PeerOffer, items: [item.connectionPoint('10.77.1.1', 40854)] });
  assert.equal(signal.subarray(0, 4).toString(), 'DLEP');
  assert.equal(decodeSignal(signal).type, Signal.PeerOffer);

  assert.throws(() => decodeSignal(Buffer.from('XLEP\0\x01\0\0')), DlepDecodeError);
  assert.throws(() => decodeSignal(Buffer.concat([signal, Buffer.alloc(1)])), DlepDecodeError);
  const lying = Buffer.from(wire);
  lying.writeUInt16BE(200, 6); // the first item claims more than the message holds
  assert.throws(() => new MessageReader().push(lying), DlepDecodeError);
  const shortRate = encodeMessage({
    type: Message.DestinationUpdate,
    items: [item.mac(MAC), { type: Item.CurrentDataRateReceive, value: Buffer.alloc(3) }],
  });
  assert.throws(() => metricsOf(new MessageReader().push(shortRate)[0]!), /has 3 bytes, not 8/);
  const quality = encodeMessage({
    type: Message.DestinationUpdate,
    items: [item.u8(Item.RelativeLinkQualityTransmit, 101)],
  });
  assert.throws(() => metricsOf(new MessageReader().push(quality)[0]!), /above 100/);
});

test('router and modem: discovery, session, destination up, update, down, and the session ending takes all down', async () => {
  const modem = await DlepModem.start({
    address: '127.0.0.1',
    discoveryPort: 40000 + (process.pid % 20000),
    sessionMetrics: metrics,
  });
  const router = new DlepRouter({
    ...(await discoverModem({
      localAddress: '127.0.0.1',
      target: '127.0.0.1',
      port: 40000 + (process.pid % 20000),
    })),
  });
  const events: string[] = [];
  for (const kind of ['destination-up', 'destination-update', 'destination-down'] as const)
    router.on(kind, (d: Destination) => events.push(`${kind} ${d.mac}`));
  try {
    await router.open();
    assert.equal(router.sessionUp, true);
    assert.deepEqual(router.sessionMetrics, metrics, "the radio's defaults");
    modem.destinationUp(MAC, ['10.77.1.2'], metrics);
    const up = await until('destination up', () => router.destinations.get(MAC));
    assert.deepEqual(up.addresses, ['10.77.1.2']);
    assert.equal(up.metrics.currentTxBps, 18_000_000n);

    modem.destinationUpdate(MAC, { currentTxBps: 4_000_000n, currentRxBps: 4_000_000n, rlqTx: 60 });
    await until('the update', () =>
      router.destinations.get(MAC)?.metrics.currentTxBps === 4_000_000n ? true : undefined,
    );
    assert.equal(
      router.destinations.get(MAC)?.metrics.maxTxBps,
      20_000_000n,
      'what the update leaves out stays',
    );
    assert.equal(router.destinations.get(MAC)?.metrics.rlqTx, 60);

    modem.destinationDown(MAC);
    await until('destination down', () => (router.destinations.has(MAC) ? undefined : true));
    modem.destinationUp(MAC, ['10.77.1.2'], metrics);
    await until('up again', () => router.destinations.get(MAC));
    const ended = once(router, 'session-down');
    await modem.close();
    const [why] = await ended;
    assert.match(String(why), /closed/);
    assert.equal(router.destinations.size, 0, 'no destination outlives the session');
    assert.deepEqual(events, [
      `destination-up ${MAC}`,
      `destination-update ${MAC}`,
      `destination-down ${MAC}`,
      `destination-up ${MAC}`,
      `destination-down ${MAC}`,
    ]);
  } finally {
    router.close();
    await modem.close().catch(() => undefined);
  }
});

/** A fake modem on loopback that accepts the session, then does what `then` says. */
async function fakeModem(then: (send: (b: Buffer) => void) => void) {
  const server = createServer((s) => {
    s.on('error', () => undefined);
    const reader = new MessageReader();
    s.on('data', (chunk) => {
      for (const m of reader.push(chunk)) {
        if (m.type === Message.SessionInitialization) {
          s.write(
            encodeMessage({
              type: Message.SessionInitializationResponse,
              items: [item.status(Status.Success), item.u32(Item.HeartbeatInterval, 1000)],
            }),
          );
          then((b) => s.write(b));
        }
        if (m.type === Message.SessionTermination) terminations.push(statusOf(m)?.code ?? -1);
      }
    });
  });
  const terminations: number[] = [];
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { port, terminations, close: () => new Promise<void>((r) => server.close(() => r())) };
}

test('a modem that sends garbage, an unknown message or goes quiet is told why and dropped; the router lives on', async () => {
  for (const [name, bytes, code] of [
    ['garbage', Buffer.from([0, 7, 0, 5, 0, 7, 0, 200, 1]), Status.InvalidData],
    ['unknown', encodeMessage({ type: 999, items: [] }), Status.UnknownMessage],
    ['quiet', Buffer.alloc(0), Status.TimedOut],
  ] as const) {
    const modem = await fakeModem((send) => {
      if (bytes.length) setTimeout(() => send(bytes), 50);
    });
    const router = new DlepRouter({ address: '127.0.0.1', port: modem.port, heartbeatMs: 1000 });
    try {
      const ended = once(router, 'session-down');
      await router.open();
      const [why] = await ended;
      assert.ok(String(why).length > 0, `${name}: a reason`);
      await until(`${name}: the termination reaches the modem`, () =>
        modem.terminations.length ? true : undefined,
      );
      assert.deepEqual(modem.terminations, [code], name);
    } finally {
      router.close();
      await modem.close();
    }
  }
});
