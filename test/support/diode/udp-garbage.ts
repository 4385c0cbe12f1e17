/**
 * Sends datagrams that are not valid diode frames, for the receiver's robustness test:
 *   udp-garbage <host> <port> <count> [epoch]
 * random bytes of random length, and near-frames: bad magic, version, type, flags,
 * truncated, trailing bytes, oversized; with an epoch, also well-formed frames of that
 * sender with a link sequence no sender uses (past SEQ_LIMIT: an impossible field). Prints
 * {"sent":n,"kinds":{...}}.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import {
  encodeFrame,
  FrameType,
  HEADER_BYTES,
  Importance,
  SEQ_LIMIT,
} from '../../../src/diode/protocol/frame.js';

const [host = '', port = '0', count = '0', epochArg] = process.argv.slice(2);
const socket = createSocket('udp4');
const kinds: Record<string, number> = {};

function valid(epoch: number, linkSeq: number): Buffer {
  const h = {
    type: FrameType.Data,
    flags: 0,
    importance: Importance.High,
    copy: 0,
    epoch,
    linkSeq,
    session: 1,
    seq: 1,
    block: 0,
    keyId: 0,
  };
  return encodeFrame(h, randomBytes(100));
}

function make(i: number): [string, Buffer] {
  const base = valid(randomInt(1, 2 ** 32), i);
  switch (i % 9) {
    case 0:
      return ['random', random()];
    case 1:
      return ['short', randomBytes(randomInt(0, HEADER_BYTES))];
    case 2:
      base[2] = 9;
      return ['version', base];
    case 3:
      base[3] = 200;
      return ['type', base];
    case 4:
      base[4] = 0x80;
      return ['flags', base];
    case 5:
      return ['truncated', base.subarray(0, base.length - 10)];
    case 6:
      return ['trailing', Buffer.concat([base, randomBytes(5)])];
    case 7:
      return ['oversized', Buffer.concat([base, randomBytes(9500)])];
    default:
      if (epochArg) return ['field', valid(Number(epochArg), SEQ_LIMIT + i)];
      return ['random', random()];
  }
}

/** Random bytes of random length (at least a header's worth, not starting like a frame). */
function random(): Buffer {
  const b = randomBytes(randomInt(HEADER_BYTES, 1500));
  if (b[0] === 0x52) b[0] = 0;
  return b;
}

const total = Number(count);
for (let i = 0; i < total; i++) {
  const [kind, datagram] = make(i);
  kinds[kind] = (kinds[kind] ?? 0) + 1;
  await new Promise<void>((resolve) => socket.send(datagram, Number(port), host, () => resolve()));
}
socket.close();
console.log(JSON.stringify({ sent: total, kinds }));
