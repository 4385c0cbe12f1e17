/**
 * The relay a node offers its neighbours, on loopback: 127.0.0.1 is "this node's radio
 * address", 127.0.0.2 the neighbour's and 127.0.0.3 someone else's. Only the neighbour is
 * joined, only to the configured tower, a few connections at most; bytes pass unchanged
 * both ways.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { NeighbourRelay } from './relay.js';

const PORT = 17444;

function from(local: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: PORT, localAddress: local }, () => resolve(s));
    s.once('error', reject);
  });
}

/** What the socket receives until it closes or `ms` pass. */
async function received(s: Socket, ms = 500): Promise<string> {
  let got = '';
  s.on('data', (d: Buffer) => {
    got += d.toString();
  });
  await Promise.race([once(s, 'close'), new Promise((r) => setTimeout(r, ms))]);
  return got;
}

test('a neighbour is joined to the tower, bytes unchanged both ways; anyone else, and a fifth connection, is refused', async () => {
  // "The tower": answers every line with its reverse.
  const tower = createServer((s) =>
    s.on('data', (d: Buffer) => s.write([...d.toString()].reverse().join(''))),
  );
  tower.listen(0, '127.0.0.1');
  await once(tower, 'listening');
  const towerPort = (tower.address() as { port: number }).port;
  const relay = new NeighbourRelay(
    [{ iface: 'mesh-n2', address: '127.0.0.1', rateMbit: 20, mesh: { neighbour: '127.0.0.2' } }],
    { port: PORT, tower: () => `127.0.0.1:${towerPort}` },
  );
  const open: Socket[] = [];
  try {
    await relay.start();
    const first = await from('127.0.0.2');
    open.push(first);
    first.write('hello tower');
    assert.equal(await received(first), 'rewot olleh');

    const stranger = await from('127.0.0.3');
    stranger.write('let me in');
    assert.equal(await received(stranger), '', 'nothing reaches a stranger');
    assert.ok(stranger.destroyed || stranger.readableEnded, 'and its connection is closed');

    for (let i = 0; i < 3; i++) open.push(await from('127.0.0.2'));
    const fifth = await from('127.0.0.2');
    fifth.write('one more');
    assert.equal(await received(fifth), '');
    assert.deepEqual(relay.counters, { joined: 4, refused: 2 });
  } finally {
    for (const s of open) s.destroy();
    await relay.close();
    tower.close();
  }
});
