import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import {
  boundPort,
  closeBatchSocket,
  DatagramBatch,
  EAGAIN,
  MSG_DONTWAIT,
  openBatchSocket,
  socketMemory,
} from './mmsg.js';

async function send(port: number, datagrams: Buffer[]): Promise<void> {
  const tx = createSocket('udp4');
  for (const d of datagrams) await new Promise((r) => tx.send(d, port, '127.0.0.1', r));
  tx.close();
}

test('a batch socket receives datagrams in order, many per call, and says which were cut', async () => {
  const s = openBatchSocket({ host: '127.0.0.1', port: 0, receiveBufferBytes: 1 << 20, timeoutMs: 50 });
  try {
    const port = boundPort(s.fd);
    await send(port, [
      ...Array.from({ length: 100 }, (_, i) => Buffer.alloc(100 + i, i)),
      Buffer.alloc(3000, 7),
    ]);
    const batch = new DatagramBatch(64, 2000);
    const got: Buffer[] = [];
    let cut = 0;
    for (let n = batch.receive(s.fd, MSG_DONTWAIT); n > 0; n = batch.receive(s.fd, MSG_DONTWAIT)) {
      assert.ok(n <= 64);
      for (let i = 0; i < n; i++) {
        got.push(Buffer.from(batch.slot(i).subarray(0, batch.received(i))));
        if (batch.truncated(i)) cut++;
      }
    }
    assert.equal(got.length, 101);
    for (const [i, d] of got.slice(0, 100).entries()) assert.deepEqual(d, Buffer.alloc(100 + i, i));
    assert.equal(got[100]!.length, 2000, 'cut to its slot');
    assert.equal(cut, 1);
    assert.equal(batch.receive(s.fd, MSG_DONTWAIT), -EAGAIN);
  } finally {
    closeBatchSocket(s.fd);
  }
});

test("the kernel's drop counter counts what a full receive buffer lost", async () => {
  const s = openBatchSocket({ host: '127.0.0.1', port: 0, receiveBufferBytes: 65536, timeoutMs: 50 });
  try {
    await send(
      boundPort(s.fd),
      Array.from({ length: 400 }, () => Buffer.alloc(1400)),
    );
    const before = socketMemory(s.fd)!;
    assert.ok(before.queued > 0 && before.queued <= before.buffer, JSON.stringify(before));
    const batch = new DatagramBatch(64, 1500);
    let received = 0;
    for (let n = batch.receive(s.fd, MSG_DONTWAIT); n > 0; n = batch.receive(s.fd, MSG_DONTWAIT))
      received += n;
    const after = socketMemory(s.fd)!;
    assert.ok(after.drops > 0, 'a 64 KiB buffer cannot hold 400 datagrams');
    assert.equal(received + after.drops, 400);
    assert.equal(after.queued, 0);
  } finally {
    closeBatchSocket(s.fd);
  }
});

test('a batch socket refuses a port in use, and an address that is not one, by name', () => {
  const a = openBatchSocket({ host: '127.0.0.1', port: 0, receiveBufferBytes: 65536, timeoutMs: 50 });
  try {
    assert.throws(
      () =>
        openBatchSocket({
          host: '127.0.0.1',
          port: boundPort(a.fd),
          receiveBufferBytes: 65536,
          timeoutMs: 50,
        }),
      /bind 127\.0\.0\.1:\d+: Address already in use/,
    );
    assert.throws(
      () => openBatchSocket({ host: 'localhost', port: 1, receiveBufferBytes: 65536, timeoutMs: 50 }),
      /localhost is not an IP address/,
    );
  } finally {
    closeBatchSocket(a.fd);
  }
});
