/**
 * A TCP client for the diode tests, run inside a namespace:
 *   tcp-source <host> <port> <bytes> [seed]      send <bytes> of seeded pseudo-random data
 *   tcp-source <host> <port> --seconds <s> [seed] send as fast as TCP allows for <s> seconds
 * then end the connection; prints {"sent":n,"sha256":"...","seconds":s,"outcome":"end"|"error"}.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { connect } from 'node:net';

const [host = '', port = '0', amount = '0', ...rest] = process.argv.slice(2);
const timed = amount === '--seconds';
const limitBytes = timed ? Number.POSITIVE_INFINITY : Number(amount);
const seconds = timed ? Number(rest.shift()) : Number.POSITIVE_INFINITY;
const seed = rest[0] ?? 'tacmesh';

const key = createHash('sha256').update(seed).digest();
const stream = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
const zeros = Buffer.alloc(64 * 1024);
const hash = createHash('sha256');
const started = performance.now();
let sent = 0;
let outcome = 'end';

const socket = connect({ host, port: Number(port) });
socket.on('error', (err) => {
  outcome = `error: ${err.message}`;
});
socket.on('close', () => {
  const result = { sent, sha256: hash.digest('hex'), seconds: (performance.now() - started) / 1000, outcome };
  console.log(JSON.stringify(result));
  process.exit(outcome === 'end' ? 0 : 1);
});
socket.on('data', () => undefined);

function pump(): void {
  while (sent < limitBytes && (performance.now() - started) / 1000 < seconds) {
    const n = Math.min(zeros.length, limitBytes - sent);
    const chunk = stream.update(zeros.subarray(0, n));
    hash.update(chunk);
    sent += n;
    if (!socket.write(chunk)) {
      socket.once('drain', pump);
      return;
    }
  }
  socket.end();
}
socket.once('connect', pump);
if (timed) setTimeout(() => undefined, seconds * 1000 + 10); // wake the loop at the deadline
