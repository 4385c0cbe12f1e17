import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { generateKey, KeyFileError, KeyRing, readKeyFile, TAG_BYTES } from './auth.js';
import { encodeHeader, FrameFlag, FrameType, Importance } from './frame.js';

const dir = mkdtempSync(join(tmpdir(), 'tacmesh-auth-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const key = () => randomBytes(32).toString('hex');

function keyFile(name: string, text: string, mode = 0o600): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  chmodSync(f, mode);
  return f;
}

test('key files: strict permissions, well-formed lines, at most two live keys', () => {
  assert.throws(() => readKeyFile(keyFile('open', `1 ${key()}\n`, 0o644)), /chmod 600/);
  assert.throws(() => readKeyFile(keyFile('bad', '1 abc\n')), /:1: expected/);
  assert.throws(() => readKeyFile(keyFile('dup', `1 ${key()}\n1 ${key()}\n`)), /twice/);
  assert.throws(() => readKeyFile(keyFile('three', `1 ${key()}\n2 ${key()}\n3 ${key()}\n`)), /at most 2/);
  assert.throws(() => readKeyFile(keyFile('empty', '# nothing\n')), KeyFileError);
  assert.equal(readKeyFile(keyFile('ok', `# comment\n7 ${key()} # old\n8 ${key()}\n`)).size, 2);
  const gen = join(dir, 'gen');
  generateKey(gen, 1);
  generateKey(gen, 2);
  assert.deepEqual([...readKeyFile(gen).keys()], [1, 2]);
});

function datagram(ring: KeyRing, payload: Buffer, copy = 0): Buffer {
  const header = encodeHeader(
    {
      type: FrameType.Data,
      flags: FrameFlag.Authenticated,
      importance: Importance.High,
      copy,
      epoch: 1,
      linkSeq: 2,
      session: 3,
      seq: 4,
      block: 0,
      keyId: ring.signingId,
    },
    payload.length,
    TAG_BYTES,
  );
  return Buffer.concat([header, payload, ring.tag(ring.signingId, header, payload)!]);
}

test('the tag is HMAC-SHA-256 of header (copy byte as 0) and payload, truncated to 16 bytes', () => {
  const hex = key();
  const ring = new KeyRing(keyFile('hmac', `5 ${hex}\n`));
  for (const length of [0, 1, 63, 64, 200, 1412, 8940]) {
    const payload = randomBytes(length);
    const d = datagram(ring, payload, length % 3);
    const header = Buffer.from(d.subarray(0, 32));
    header[6] = 0;
    const expected = createHmac('sha256', Buffer.from(hex, 'hex')).update(header).update(payload).digest();
    assert.deepEqual(d.subarray(32 + length), expected.subarray(0, TAG_BYTES), `payload of ${length} bytes`);
  }
});

test('a tag checks; every flipped bit (but the copy byte) fails; an unknown key is named', () => {
  const ring = new KeyRing(keyFile('k1', `1 ${key()}\n`));
  const payload = randomBytes(200);
  const d = datagram(ring, payload);
  assert.equal(ring.verify(d, 1, payload.length), undefined);
  assert.equal(
    ring.verify(datagram(ring, payload, 2), 1, payload.length),
    undefined,
    'a copy has the same tag',
  );
  for (let byte = 0; byte < d.length; byte++) {
    if (byte === 6 || byte === 28 || byte === 29 || byte === 7) continue; // copy; key id and tag length: below
    const bad = Buffer.from(d);
    bad[byte]! ^= 1 << (byte % 8);
    assert.equal(ring.verify(bad, 1, payload.length), 'bad-tag', `byte ${byte}`);
  }
  assert.equal(ring.verify(d, 9, payload.length), 'unknown-key');
  assert.equal(ring.verify(d, 0, payload.length), 'unauthenticated');
});

test('rotation: the receiver takes a second key, the sender moves to it, the old one is retired', () => {
  const k1 = `1 ${key()}\n`;
  const k2 = `2 ${key()}\n`;
  const sendFile = keyFile('send', k1);
  const recvFile = keyFile('recv', k1);
  const sender = new KeyRing(sendFile);
  const receiver = new KeyRing(recvFile);
  const p = randomBytes(10);
  const touch = (f: string, text: string, s: number) => {
    writeFileSync(f, text);
    utimesSync(f, s, s);
  };
  touch(recvFile, k1 + k2, 1000); // 1. the receiver learns key 2
  assert.equal(receiver.reload().changed, true);
  assert.deepEqual(receiver.ids(), [1, 2]);
  assert.equal(receiver.verify(datagram(sender, p), 1, p.length), undefined, 'key 1 still good');
  touch(sendFile, k1 + k2, 1000); // 2. the sender signs with the highest id
  sender.reload();
  assert.equal(sender.signingId, 2);
  assert.equal(receiver.verify(datagram(sender, p), 2, p.length), undefined);
  touch(recvFile, k2, 2000); // 3. key 1 retired
  receiver.reload();
  const old = new KeyRing(keyFile('old', k1));
  assert.equal(receiver.verify(datagram(old, p), 1, p.length), 'unknown-key');
  touch(recvFile, 'garbage\n', 3000); // a broken file keeps the keys that worked
  const r = receiver.reload();
  assert.equal(r.changed, false);
  assert.match(r.error ?? '', /expected/);
  assert.deepEqual(receiver.ids(), [2]);
});
