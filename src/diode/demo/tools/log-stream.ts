/**
 * The demo's TCP service: a syslog-like line stream across the diode.
 *   log-stream source <host> <port> <lines/s> <session-s> <stats.json>
 *       one TCP session after another (each `session-s` long, then closed cleanly, as a log
 *       shipper that reconnects), lines `<134>1 <time> mesh-gw tacmesh-demo - - - seq=<n> ...`
 *   log-stream sink <host> <port> <stats.json>
 *       the destination: counts lines by seq (unique, again), connections that ended cleanly
 *       or were reset, and any gap inside one connection (a stream delivered with a hole: must stay 0)
 * Both rewrite their counters as JSON (the source ten times a second, the destination twice).
 */
import { connect, createServer, type Socket } from 'node:net';
import { writeCountersEvery } from './counters-file.js';

const [mode, host = '127.0.0.1', port = '0', ...rest] = process.argv.slice(2);

if (mode === 'source') {
  const [rate = '20', sessionS = '10', file = ''] = rest;
  const stats = { sessions: 0, sessionsClosed: 0, lines: 0, bytes: 0, errors: 0, lastError: '' };
  // Written more often than the destination's, so what was sent is never shown behind what arrived.
  writeCountersEvery(file, 100, () => stats);
  let seq = 0;
  const session = () => {
    const socket = connect(Number(port), host);
    const number = ++stats.sessions;
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    const next = (delay: number) => {
      clearInterval(timer);
      if (ended) return;
      ended = true;
      setTimeout(session, delay);
    };
    socket.on('connect', () => {
      const opened = Date.now();
      timer = setInterval(() => {
        if (Date.now() - opened >= Number(sessionS) * 1000) {
          clearInterval(timer);
          socket.end(() => {
            stats.sessionsClosed++;
            next(0);
          });
          return;
        }
        const line = `<134>1 ${new Date().toISOString()} mesh-gw tacmesh-demo - - - seq=${++seq} session=${number} link report: radio n1-n2 up, 19.8 Mbit/s\n`;
        socket.write(line);
        stats.lines++;
        stats.bytes += line.length;
      }, 1000 / Number(rate));
    });
    socket.on('error', (err) => {
      stats.errors++;
      stats.lastError = err.message;
      next(1000);
    });
  };
  session();
} else if (mode === 'sink') {
  const [file = ''] = rest;
  const seen = new Set<number>();
  const stats = { connections: 0, complete: 0, reset: 0, lines: 0, again: 0, gaps: 0, highest: 0 };
  writeCountersEvery(file, 500, () => ({ ...stats, lines: seen.size }));
  const server = createServer((socket: Socket) => {
    stats.connections++;
    let buffered = '';
    let last = 0;
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      buffered += text;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const n = Number(/ seq=(\d+) /.exec(line)?.[1] ?? Number.NaN);
        if (!Number.isFinite(n)) continue;
        if (last && n !== last + 1) stats.gaps++;
        last = n;
        if (seen.has(n)) stats.again++;
        else seen.add(n);
        stats.highest = Math.max(stats.highest, n);
      }
    });
    socket.on('end', () => {
      stats.complete++;
      socket.end();
    });
    socket.on('error', () => {
      stats.reset++;
    });
  });
  server.listen(Number(port), host);
} else {
  console.error(
    'usage: log-stream source <host> <port> <lines/s> <session-s> <stats.json> | sink <host> <port> <stats.json>',
  );
  process.exit(2);
}
