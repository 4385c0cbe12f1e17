/**
 * A steady UDP stream, like a sensor's video (run inside namespaces by the testbed):
 *   udp stream <host> <port> <kbit/s>  datagrams of 1200 bytes at that rate until killed
 *   udp sink <port>                    receives them; prints "ready"
 * Sends go on through a cut link (the errors are dropped): the stream resumes on its own.
 */
import { createSocket } from 'node:dgram';

const PAYLOAD = 1200;
const TICK_MS = 10;

const [mode, ...args] = process.argv.slice(2);

if (mode === 'stream') {
  const [host = '', port = '0', kbit = '2000'] = args;
  const socket = createSocket('udp4');
  const perSecond = (Number(kbit) * 1000) / 8 / PAYLOAD;
  const payload = Buffer.alloc(PAYLOAD, 0x5a);
  const t0 = performance.now();
  let sent = 0;
  // Paced on elapsed time, so a late tick sends what it owes and the rate holds.
  setInterval(() => {
    const owed = Math.floor(((performance.now() - t0) / 1000) * perSecond) - sent;
    for (let i = 0; i < owed; i++) socket.send(payload, Number(port), host, () => undefined);
    sent += Math.max(0, owed);
  }, TICK_MS);
} else if (mode === 'sink') {
  const [port = '0'] = args;
  const socket = createSocket('udp4');
  socket.on('message', () => undefined);
  socket.bind(Number(port), () => console.log('ready'));
} else {
  console.error('usage: udp stream <host> <port> <kbit/s> | udp sink <port>');
  process.exit(2);
}
