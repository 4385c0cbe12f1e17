/**
 * A UDP traffic tool run inside test namespaces (by Lab.spawnNode):
 *   udp send <host> <port> <count> <size> [pps]   send count datagrams, print {"sent":n}
 *   udp recv <port> <idle-ms> [first-ms]          count datagrams until idle, print {"received":n,"bytes":b};
 *                                                 the first may take first-ms (default 30000: a
 *                                                 sender starting on a busy machine)
 * It prints "ready" on stdout once its socket is bound (recv) so the caller can start sending.
 */
import { createSocket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'send') {
  const [host = '', port = '0', count = '0', size = '64', pps = '20000'] = args;
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const payload = Buffer.alloc(Number(size), 0x5a);
  const total = Number(count);
  const perTick = Math.max(1, Math.round(Number(pps) / 1000));
  let sent = 0;
  while (sent < total) {
    const batch = Math.min(perTick, total - sent);
    await Promise.all(
      Array.from(
        { length: batch },
        () => new Promise<void>((r) => socket.send(payload, Number(port), host, () => r())),
      ),
    );
    sent += batch;
    await sleep(1);
  }
  socket.close();
  console.log(JSON.stringify({ sent }));
} else if (mode === 'recv') {
  const [port = '0', idle = '1000', first = '30000'] = args;
  const socket = createSocket({ type: 'udp4', recvBufferSize: 8 * 1024 * 1024 });
  let received = 0;
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;
  const finish = () => {
    socket.close();
    console.log(JSON.stringify({ received, bytes }));
  };
  const arm = (ms: number) => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(finish, ms);
  };
  socket.on('message', (msg) => {
    received++;
    bytes += msg.length;
    arm(Number(idle));
  });
  socket.bind(Number(port), () => {
    console.log('ready');
    arm(Number(first));
  });
} else {
  console.error('usage: udp send <host> <port> <count> <size> [pps] | udp recv <port> <idle-ms> [first-ms]');
  process.exit(2);
}
