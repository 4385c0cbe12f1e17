/**
 * HTTP traffic for namespaces (run by Lab.spawnNode or the testbed):
 *   http serve <port> [host]             answers /status/<code> with that code, /bytes/<n> with n
 *                                        bytes, anything else 200; ?delay=<ms> answers that much later
 *   http sample <base-url> <count> <rps> <delay-ms> <status>...
 *                                        count requests, each a status drawn at random from
 *                                        the list (the server's answer); prints the client's
 *                                        own tally: {"sent","statuses":{code:n},"latenciesMs":[...],
 *                                        "startMs","endMs"} (first send, last answer; epoch ms)
 *   http get <base-url> <path>...        one request per path, in order; prints {"statuses":[...]}
 *   http keep-alive <base-url> <path>... the same over one connection
 *   http load <base-url> <rps> <path>... requests at a steady rate until killed
 *   http mix <rps> <url>...              the same over whole URLs (several servers), in turn
 * Prints "ready" when serving.
 */
import { Agent, createServer, request } from 'node:http';

const [mode, ...args] = process.argv.slice(2);

function get(url: string, agent: Agent | false = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

if (mode === 'serve') {
  const [port = '8080', host = '0.0.0.0'] = args;
  const server = createServer((req, res) => {
    const m = /^\/status\/(\d{3})/.exec(req.url ?? '');
    const delay = Number(/[?&]delay=(\d{1,6})/.exec(req.url ?? '')?.[1] ?? 0);
    const bytes = /^\/bytes\/(\d{1,9})$/.exec(req.url ?? '');
    res.statusCode = m ? Number(m[1]) : 200;
    res.setHeader('content-type', 'text/plain');
    const body = bytes
      ? Buffer.alloc(Number(bytes[1]), 'x')
      : `tacmesh test server: ${req.method} ${req.url}\n`;
    setTimeout(() => res.end(body), delay);
  });
  server.listen(Number(port), host, () => console.log('ready'));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
} else if (mode === 'get' || mode === 'keep-alive') {
  const [base = '', ...paths] = args;
  const agent = mode === 'keep-alive' && new Agent({ keepAlive: true, maxSockets: 1 });
  const statuses: number[] = [];
  for (const path of paths) statuses.push(await get(`${base}${path}`, agent));
  if (agent) agent.destroy();
  console.log(JSON.stringify({ statuses }));
} else if (mode === 'load') {
  const [base = '', rps = '5', ...paths] = args;
  let i = 0;
  setInterval(() => {
    const path = paths[i++ % paths.length] ?? '/';
    get(`${base}${path}`).catch(() => undefined); // the demo keeps going through link cuts
  }, 1000 / Number(rps));
} else if (mode === 'sample') {
  const [base = '', count = '10', rps = '10', delay = '0', ...codes] = args;
  const statuses: Record<string, number> = {};
  const latenciesMs: number[] = [];
  const pending: Promise<void>[] = [];
  const startMs = Date.now();
  for (let i = 0; i < Number(count); i++) {
    const code = codes[Math.floor(Math.random() * codes.length)] ?? '200';
    const t0 = performance.now();
    pending.push(
      get(`${base}/status/${code}?delay=${delay}`).then((status) => {
        latenciesMs.push(performance.now() - t0);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }),
    );
    await new Promise((r) => setTimeout(r, 1000 / Number(rps)));
  }
  await Promise.all(pending);
  console.log(JSON.stringify({ sent: Number(count), statuses, latenciesMs, startMs, endMs: Date.now() }));
} else if (mode === 'mix') {
  const [rps = '5', ...urls] = args;
  let i = 0;
  setInterval(() => {
    get(urls[i++ % urls.length] ?? '').catch(() => undefined);
  }, 1000 / Number(rps));
} else {
  console.error(
    'usage: http serve <port> [host] | http sample <base-url> <count> <rps> <delay-ms> <status>... | http get|keep-alive <base-url> <path>... | http load <base-url> <rps> <path>... | http mix <rps> <url>...',
  );
  process.exit(2);
}
