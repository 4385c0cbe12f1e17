import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  addressBytes,
  decodeFrame,
  decodeOpen,
  decodeUdp,
  encodeFrame,
  encodeOpen,
  encodeUdpPrefix,
  type FrameHeader,
  FrameType,
  HEADER_BYTES,
  Importance,
  MAX_COPY,
  SEQ_LIMIT,
  withCopyNumber,
} from './frame.js';

const header: FrameHeader = {
  type: FrameType.Data,
  flags: 0,
  importance: Importance.High,
  copy: 0,
  epoch: 0xdeadbeef,
  linkSeq: SEQ_LIMIT - 1,
  session: 7,
  seq: 123456,
  block: 0,
  keyId: 0,
};

test('a frame survives encode and decode field by field', () => {
  const payload = randomBytes(1000);
  const d = decodeFrame(encodeFrame(header, payload));
  assert.ok(d.ok);
  const { payload: got, tag, ...fields } = d.frame;
  assert.deepEqual(fields, header);
  assert.deepEqual(got, payload);
  assert.equal(tag.length, 0);
});

test('copies differ from their original in the copy byte only', () => {
  const original = encodeFrame(header, Buffer.from('x'));
  const copy = Buffer.concat([withCopyNumber(original.subarray(0, HEADER_BYTES), 2), Buffer.from('x')]);
  const diff = [...original].flatMap((b, i) => (b === copy[i] ? [] : [i]));
  assert.deepEqual(diff, [6]);
  const d = decodeFrame(copy);
  assert.ok(d.ok && d.frame.copy === 2);
});

test('datagrams that are not frames are rejected with a reason, never thrown', () => {
  const good = encodeFrame(header, Buffer.alloc(40, 1));
  const mutate = (i: number, v: number) => {
    const b = Buffer.from(good);
    b[i] = v;
    return b;
  };
  const cases: [Buffer, string][] = [
    [Buffer.alloc(0), 'short'],
    [good.subarray(0, HEADER_BYTES - 1), 'short'],
    [mutate(0, 0), 'magic'],
    [mutate(2, 1), 'version'],
    [mutate(3, 0), 'type'],
    [mutate(3, 99), 'type'],
    [mutate(4, 1), 'flags'], // the authenticated flag without a tag
    [mutate(4, 0x80), 'flags'],
    [mutate(7, 16), 'flags'], // a tag without the authenticated flag
    [mutate(5, 7), 'type'],
    [good.subarray(0, good.length - 1), 'truncated'],
    [Buffer.concat([good, Buffer.alloc(1)]), 'trailing'],
  ];
  for (const [datagram, reason] of cases) assert.deepEqual(decodeFrame(datagram), { ok: false, reason });
  for (let i = 0; i < 20_000; i++) {
    const d = decodeFrame(randomBytes(i % 200));
    assert.equal(d.ok, false); // random bytes pass magic, version, type, flags and length almost never
  }
});

test('open and UDP payloads round-trip; malformed ones are refused', () => {
  const open = {
    service: 's',
    destination: { host: '10.0.0.1', port: 80 },
    client: { address: '1.2.3.4', port: 5 },
  };
  assert.deepEqual(decodeOpen(encodeOpen(open)), open);
  assert.equal(decodeOpen(Buffer.from('{"service":"s","destination":{"host":"x","port":0}}')), undefined);
  assert.equal(decodeOpen(Buffer.from('not json')), undefined);
  const data = Buffer.from('hello');
  assert.deepEqual(decodeUdp(Buffer.concat([encodeUdpPrefix(addressBytes('10.77.200.9'), 5353), data])), {
    host: '10.77.200.9',
    port: 5353,
    data,
  });
  const v6 = decodeUdp(Buffer.concat([encodeUdpPrefix(addressBytes('fd00::1'), 53), data]));
  assert.equal(v6?.host, 'fd00:0:0:0:0:0:0:1');
  assert.equal(decodeUdp(Buffer.from([4, 1, 2])), undefined);
  assert.equal(decodeUdp(Buffer.from([5, 1, 2, 3, 4, 0, 1])), undefined);
});

test('impossible fields are refused by the decoders: copy, sequence, key id, UDP port 0, open to a name', () => {
  const reason = (h: Partial<FrameHeader>) => {
    const d = decodeFrame(encodeFrame({ ...header, ...h }, Buffer.from('x')));
    return d.ok ? 'ok' : d.reason;
  };
  assert.equal(reason({}), 'ok');
  assert.equal(reason({ copy: MAX_COPY + 1 }), 'field');
  assert.equal(reason({ linkSeq: SEQ_LIMIT }), 'field');
  assert.equal(reason({ keyId: 3 }), 'field', 'a key id without the authenticated flag');
  assert.equal(reason({ flags: 2, block: 0xffffffff }), 'field', 'an FEC block past the limit');
  const udp = (host: string, port: number) =>
    decodeUdp(Buffer.concat([encodeUdpPrefix(addressBytes(host), port), Buffer.from('data')]));
  assert.equal(udp('10.77.0.1', 0), undefined, 'port 0');
  assert.equal(udp('0.0.0.0', 53), undefined, 'the unspecified address');
  assert.equal(udp('::', 53), undefined);
  assert.equal(udp('10.77.0.1', 53)?.port, 53);
  const open = (host: string, port: number) =>
    decodeOpen(
      encodeOpen({ service: 's', destination: { host, port }, client: { address: '10.77.0.9', port: 1 } }),
    );
  assert.equal(open('db.example', 5432), undefined, 'the receiver resolves no names');
  assert.equal(open('10.77.0.1', 0), undefined);
  assert.equal(open('10.77.0.1', 5432)?.destination.port, 5432);
});
