import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import {
  boundPort,
  closeBatchSocket,
  DatagramBatch,
  MSG_DONTWAIT,
  openBatchSocket,
} from '../../shared/mmsg.js';
import { fdOf } from '../../shared/socket-options.js';
import { LinkWriter } from './link-writer.js';

test('the link writer sends what it is given, in order, header + payload + tag, many per system call', async () => {
  const rx = openBatchSocket({ host: '127.0.0.1', port: 0, receiveBufferBytes: 8 << 20, timeoutMs: 50 });
  const tx = createSocket('udp4');
  try {
    await new Promise<void>((r) => tx.connect(boundPort(rx.fd), '127.0.0.1', r));
    const w = new LinkWriter(fdOf(tx)!, 1472);
    const header = (i: number) => Buffer.from(`h${String(i).padStart(5, '0')}`);
    for (let i = 0; i < 500; i++) {
      w.send(header(i), Buffer.alloc(1000, i), i % 2 ? Buffer.from('tag') : undefined);
      if (i % 100 === 99) w.flush();
    }
    w.flush();
    assert.equal(w.sent, 500);
    assert.ok(w.calls < 50, `${w.calls} calls for 500 datagrams`);
    assert.equal(w.backlogBytes, 0);
    await new Promise((r) => setTimeout(r, 50));
    const batch = new DatagramBatch(64, 2000);
    const got: Buffer[] = [];
    for (let n = batch.receive(rx.fd, MSG_DONTWAIT); n > 0; n = batch.receive(rx.fd, MSG_DONTWAIT))
      for (let i = 0; i < n; i++) got.push(Buffer.from(batch.slot(i).subarray(0, batch.received(i))));
    assert.equal(got.length, 500);
    got.forEach((d, i) => {
      assert.deepEqual(d.subarray(0, 6), header(i));
      assert.equal(d.length, 6 + 1000 + (i % 2 ? 3 : 0));
      assert.equal(d[6], i & 0xff);
    });
    w.close();
  } finally {
    tx.close();
    closeBatchSocket(rx.fd);
  }
});
