/**
 * A TCP destination for the diode tests, run inside a namespace:
 *   tcp-sink <host> <port> [--read-rate <bytes/s>]   (a slow destination: reads no faster)
 * SIGUSR1 lifts the read rate (for the connections to come: a slow destination only until a
 * test has seen what slowness was for). Prints "ready" once listening, then one JSON line per connection when it closes:
 * {"bytes":n,"sha256":"...","outcome":"end"|"reset"|"error: ...","samples":[[ms,bytes],...]}.
 * "end" means a clean FIN: a complete stream; "reset" an RST (an aborted session).
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';

const [host = '0.0.0.0', port = '0', ...options] = process.argv.slice(2);
let readRate = options[0] === '--read-rate' ? Number(options[1]) : undefined;
process.on('SIGUSR1', () => {
  readRate = undefined;
});

const server = createServer((socket) => {
  const rate = readRate;
  const hash = createHash('sha256');
  const opened = performance.now();
  const samples: [number, number][] = [];
  let bytes = 0;
  let outcome = 'open';
  const timer = setInterval(() => samples.push([Math.round(performance.now() - opened), bytes]), 100);
  socket.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
    if (!rate) return;
    const ahead = (bytes / rate) * 1000 - (performance.now() - opened);
    if (ahead > 0) {
      socket.pause();
      setTimeout(() => socket.resume(), ahead);
    }
  });
  socket.on('end', () => {
    outcome = 'end';
  });
  socket.on('error', (err: NodeJS.ErrnoException) => {
    outcome = err.code === 'ECONNRESET' ? 'reset' : `error: ${err.message}`;
  });
  socket.on('close', () => {
    clearInterval(timer);
    samples.push([Math.round(performance.now() - opened), bytes]);
    console.log(JSON.stringify({ bytes, sha256: hash.digest('hex'), outcome, samples }));
  });
});
server.listen(Number(port), host, () => console.log('ready'));
