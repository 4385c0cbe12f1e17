/**
 * A bulk TCP transfer that fills whatever the path gives it (run inside namespaces by the testbed):
 *   bulk send <host> <port>  writes as fast as TCP takes it until killed; reconnects a second
 *                            after the connection fails (a cut link)
 *   bulk sink <port>         accepts connections and discards what arrives; prints "ready"
 */
import { connect, createServer } from 'node:net';

const CHUNK = Buffer.alloc(64 * 1024, 0x42);

const [mode, ...args] = process.argv.slice(2);

function send(host: string, port: number): void {
  const c = connect(port, host);
  const fill = () => {
    while (c.write(CHUNK));
  };
  c.on('connect', fill);
  c.on('drain', fill);
  c.on('error', () => undefined);
  c.on('close', () => setTimeout(() => send(host, port), 1000));
}

if (mode === 'send') {
  const [host = '', port = '0'] = args;
  send(host, Number(port));
} else if (mode === 'sink') {
  const [port = '0'] = args;
  const server = createServer((c) => {
    c.on('data', () => undefined);
    c.on('error', () => undefined);
  });
  server.listen(Number(port), () => console.log('ready'));
} else {
  console.error('usage: bulk send <host> <port> | bulk sink <port>');
  process.exit(2);
}
