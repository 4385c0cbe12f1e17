/**
 * The benchmark's prober, run inside a container namespace: for every line `<n>` on stdin it
 * sends `GET <base>/probe/<run>/<n>` on a new connection and prints `sent <n> <ms>`, the
 * time the connection came up — the request line leaves on the wire right then.
 */
import { request } from 'node:http';
import { createInterface } from 'node:readline';

const [base = '', run = 'x'] = process.argv.slice(2);

createInterface({ input: process.stdin }).on('line', (line) => {
  const n = line.trim();
  if (!n) return;
  const req = request(`${base}/probe/${run}/${n}`, { agent: false }, (res) => res.resume());
  req.on('socket', (s) => s.once('connect', () => console.log(`sent ${n} ${Date.now()}`)));
  req.on('error', (err) => console.log(`error ${n} ${err.message}`));
  req.end();
});
console.log('ready');
