/**
 * A TCP transfer for namespaces:
 *   tcp sink <port> [host]          accepts one connection, counts its bytes; prints {"bytes":n}
 *   tcp send <host> <port> <bytes>  sends that many bytes and closes; prints {"sent":n}
 * The sink prints "ready" once listening.
 */
import { connect, createServer } from 'node:net';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'sink') {
  const [port = '0', host = '::'] = args;
  const server = createServer((socket) => {
    let bytes = 0;
    socket.on('data', (d) => {
      bytes += d.length;
    });
    socket.on('end', () => {
      console.log(JSON.stringify({ bytes }));
      server.close();
    });
  });
  server.listen(Number(port), host, () => console.log('ready'));
} else if (mode === 'send') {
  const [host = '', port = '0', total = '0'] = args;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let left = Number(total);
  const socket = connect(Number(port), host, () => {
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!socket.write(chunk.subarray(0, n))) return void socket.once('drain', pump);
      }
      socket.end(() => console.log(JSON.stringify({ sent: Number(total) })));
    };
    pump();
  });
} else {
  console.error('usage: tcp sink <port> [host] | tcp send <host> <port> <bytes>');
  process.exit(2);
}
