/**
 * Probes that must or must not cross a link (run inside namespaces by netlab's one-way proof):
 *   probe listen <host> <port>       counts UDP datagrams and TCP connections to host:port;
 *                                    prints "ready", and on SIGTERM {"udp":n,"tcp":m}
 *   probe send <host> <port> <count> sends count UDP datagrams, then tries a TCP connection
 *                                    (1.5 s); prints {"udpSent":n,"tcp":"connected"|"timeout"|<error>}
 */
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';

const [mode, host = '', port = '0', count = '10'] = process.argv.slice(2);

if (mode === 'listen') {
  let udp = 0;
  let tcp = 0;
  const socket = createSocket('udp4');
  socket.on('message', () => udp++);
  const server = createServer((c) => {
    tcp++;
    c.destroy();
  });
  socket.bind(Number(port), host, () => server.listen(Number(port), host, () => console.log('ready')));
  process.on('SIGTERM', () => {
    console.log(JSON.stringify({ udp, tcp }));
    process.exit(0);
  });
} else if (mode === 'send') {
  const socket = createSocket('udp4');
  let udpSent = 0;
  for (let i = 0; i < Number(count); i++) {
    await new Promise<void>((resolve) =>
      socket.send(`tacmesh probe ${i}`, Number(port), host, (err) => {
        if (!err) udpSent++;
        resolve();
      }),
    );
    await new Promise((r) => setTimeout(r, 2));
  }
  socket.close();
  const tcp = await new Promise<string>((resolve) => {
    const c = connect(Number(port), host);
    c.setTimeout(1500, () => {
      c.destroy();
      resolve('timeout');
    });
    c.on('connect', () => {
      c.destroy();
      resolve('connected');
    });
    c.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  console.log(JSON.stringify({ udpSent, tcp }));
} else {
  console.error('usage: probe listen <host> <port> | probe send <host> <port> <count>');
  process.exit(2);
}
