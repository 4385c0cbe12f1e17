/**
 * The demo's UDP stream: telemetry datagrams across the diode.
 *   udp-stream source <host> <port> <datagrams/s> <stats.json>   numbered datagrams, steadily
 *   udp-stream sink <host> <port> <stats.json>                   counts them by number (unique, again)
 * Both rewrite their counters as JSON (the source ten times a second, the destination twice).
 */
import { createSocket } from 'node:dgram';
import { writeCountersEvery } from './counters-file.js';

const [mode, host = '127.0.0.1', port = '0', ...rest] = process.argv.slice(2);

if (mode === 'source') {
  const [rate = '50', file = ''] = rest;
  const stats = { sent: 0, errors: 0 };
  // Written more often than the destination's, so what was sent is never shown behind what arrived.
  writeCountersEvery(file, 100, () => stats);
  const socket = createSocket('udp4');
  socket.on('error', () => stats.errors++);
  let seq = 0;
  setInterval(() => {
    const n = ++seq;
    const payload = Buffer.from(
      JSON.stringify({ seq: n, time: Date.now(), node: 'n1', rssiDbm: -71, snrDb: 18.5, txMbit: 19.8 }),
    );
    socket.send(payload, Number(port), host, (err) => {
      if (err) stats.errors++;
      else stats.sent = Math.max(stats.sent, n);
    });
  }, 1000 / Number(rate));
} else if (mode === 'sink') {
  const [file = ''] = rest;
  const seen = new Set<number>();
  const stats = { received: 0, again: 0, highest: 0 };
  writeCountersEvery(file, 500, () => ({ ...stats, unique: seen.size }));
  const socket = createSocket('udp4');
  socket.on('message', (msg) => {
    stats.received++;
    let n: number;
    try {
      n = Number((JSON.parse(msg.toString()) as { seq: unknown }).seq);
    } catch {
      return;
    }
    if (seen.has(n)) stats.again++;
    else seen.add(n);
    stats.highest = Math.max(stats.highest, n);
  });
  socket.bind(Number(port), host);
} else {
  console.error(
    'usage: udp-stream source <host> <port> <datagrams/s> <stats.json> | sink <host> <port> <stats.json>',
  );
  process.exit(2);
}
