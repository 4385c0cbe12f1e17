/**
 * HTTP traffic for namespaces (run by Lab.spawnNode or the testbed):
 *   http serve <port> [host]             answers /status/<code> with that code, anything else 200
 *   http get <base-url> <path>...        one request per path, in order; prints {"statuses":[...]}
 *   http load <base-url> <rps> <path>... requests at a steady rate until killed
 *   http mix <rps> <url>...              the same over whole URLs (several servers), in turn
 * Prints "ready" when serving.
 */
import { createServer, request } from 'node:http';

const [mode, ...args] = process.argv.slice(2);

function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
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
    res.statusCode = m ? Number(m[1]) : 200;
    res.setHeader('content-type', 'text/plain');
    res.end(`tacmesh test server: ${req.method} ${req.url}\n`);
  });
  server.listen(Number(port), host, () => console.log('ready'));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
} else if (mode === 'get') {
  const [base = '', ...paths] = args;
  const statuses: number[] = [];
  for (const path of paths) statuses.push(await get(`${base}${path}`));
  console.log(JSON.stringify({ statuses }));
} else if (mode === 'load') {
  const [base = '', rps = '5', ...paths] = args;
  let i = 0;
  setInterval(() => {
    const path = paths[i++ % paths.length] ?? '/';
    get(`${base}${path}`).catch(() => undefined); // the demo keeps going through link cuts
  }, 1000 / Number(rps));
} else if (mode === 'mix') {
  const [rps = '5', ...urls] = args;
  let i = 0;
  setInterval(() => {
    get(urls[i++ % urls.length] ?? '').catch(() => undefined);
  }, 1000 / Number(rps));
} else {
  console.error(
    'usage: http serve <port> [host] | http get <base-url> <path>... | http load <base-url> <rps> <path>... | http mix <rps> <url>...',
  );
  process.exit(2);
}
