/**
 * Attacks on an authenticated diode link, for the tests:
 *   udp-attack <host> <port> <recorded-file> <kinds> [count]
 * kinds (comma-separated): replay (the recorded datagrams as they were), flip (each with one
 * random bit flipped, never the copy byte), forge (well-formed frames signed with a key that
 * is not the link's, under key id 1), unknown-key (key id 999), unsigned (no tag), fuzz
 * (`count` datagrams: random bytes, or a recorded frame with 1-8 random bytes changed, or
 * truncated/extended). Prints {"sent":{kind:n}}.
 */
import { createHmac, randomBytes, randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { encodeHeader, FrameFlag, FrameType, Importance } from '../../../src/diode/protocol/frame.js';

const [host = '', port = '0', file = '', kindList = '', countArg = '0'] = process.argv.slice(2);
const data = readFileSync(file);
const recorded: Buffer[] = [];
for (let o = 0; o + 2 <= data.length; ) {
  const len = data.readUInt16BE(o);
  recorded.push(data.subarray(o + 2, o + 2 + len));
  o += 2 + len;
}
const socket = createSocket('udp4');
const sent: Record<string, number> = {};
let inFlight = 0;

async function send(kind: string, d: Buffer): Promise<void> {
  sent[kind] = (sent[kind] ?? 0) + 1;
  inFlight++;
  socket.send(d, Number(port), host, () => {
    inFlight--;
  });
  // A little pacing so the receiver's buffer is not what drops them.
  if (inFlight > 256) await new Promise((r) => setTimeout(r, 1));
}

function forged(keyId: number, signed: boolean): Buffer {
  const base = recorded[randomInt(recorded.length)]!;
  const payload = randomBytes(200);
  const header = encodeHeader(
    {
      type: FrameType.Open,
      flags: signed ? FrameFlag.Authenticated : 0,
      importance: Importance.High,
      copy: 0,
      epoch: base.readUInt32BE(8),
      linkSeq: base.readUInt32BE(12) + 1_000 + randomInt(1000),
      session: 4242,
      seq: 0,
      block: 0,
      keyId: signed ? keyId : 0,
    },
    payload.length,
    signed ? 16 : 0,
  );
  const tag = signed
    ? createHmac('sha256', randomBytes(32)).update(header).update(payload).digest().subarray(0, 16)
    : Buffer.alloc(0);
  return Buffer.concat([header, payload, tag]);
}

function mutated(): Buffer {
  const d = Buffer.from(recorded[randomInt(recorded.length)]!);
  switch (randomInt(4)) {
    case 0:
      return d.subarray(0, randomInt(d.length));
    case 1:
      return Buffer.concat([d, randomBytes(randomInt(1, 64))]);
    default: {
      const n = randomInt(1, 9);
      for (let i = 0; i < n; i++) {
        let at = randomInt(d.length);
        if (at === 6) at = 7;
        d[at] = (d[at]! + randomInt(1, 256)) & 0xff;
      }
      return d;
    }
  }
}

for (const kind of kindList.split(',')) {
  if (kind === 'replay') for (const d of recorded) await send(kind, d);
  if (kind === 'flip')
    for (const d of recorded) {
      const b = Buffer.from(d);
      let bit = randomInt(b.length * 8);
      if (bit >> 3 === 6) bit += 8;
      b[bit >> 3]! ^= 1 << (bit & 7);
      await send(kind, b);
    }
  if (kind === 'forge') for (let i = 0; i < 500; i++) await send(kind, forged(1, true));
  if (kind === 'unknown-key') for (let i = 0; i < 500; i++) await send(kind, forged(999, true));
  if (kind === 'unsigned') for (let i = 0; i < 500; i++) await send(kind, forged(0, false));
  if (kind === 'fuzz')
    for (let i = 0; i < Number(countArg); i++)
      await send(kind, i % 2 === 0 ? randomBytes(randomInt(0, 1500)) : mutated());
}
while (inFlight > 0) await new Promise((r) => setTimeout(r, 5));
socket.close();
console.log(JSON.stringify({ sent }));
