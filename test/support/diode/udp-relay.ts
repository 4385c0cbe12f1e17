/**
 * A UDP relay in the sender's namespace, between the sender and the one-way link, for the
 * tests: it drops bursts of datagrams (linkem's loss is independent per packet) and can
 * record datagrams for the attack tool (written once `count` are recorded, or on exit).
 *   udp-relay <listenPort> <toHost> <toPort> [--from addr] [--loss p --burst n] [--record file --count n]
 * Loss: a burst of n starts at a datagram with probability p/n, so p of all datagrams are
 * lost on average, n in a row. Prints "ready", and on SIGTERM {"relayed":..,"dropped":..,"bursts":..}.
 */
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    from: { type: 'string' },
    loss: { type: 'string', default: '0' },
    burst: { type: 'string', default: '1' },
    record: { type: 'string' },
    count: { type: 'string', default: '0' },
  },
});
const [listenPort = '0', toHost = '', toPort = '0'] = positionals;
const loss = Number(values.loss);
const burst = Number(values.burst);
const recordMax = Number(values.count);
const recorded: Buffer[] = [];
let relayed = 0;
let dropped = 0;
let bursts = 0;
let dropping = 0;

const out = createSocket('udp4');
const inbound = createSocket('udp4');
inbound.on('message', (msg) => {
  if (dropping === 0 && loss > 0 && Math.random() < loss / burst) {
    dropping = burst;
    bursts++;
  }
  if (dropping > 0) {
    dropping--;
    dropped++;
    return;
  }
  if (values.record && recorded.length < recordMax) {
    recorded.push(Buffer.from(msg));
    if (recorded.length === recordMax) save();
  }
  relayed++;
  out.send(msg, Number(toPort), toHost);
});
out.bind({ port: 0, ...(values.from ? { address: values.from } : {}) }, () => {
  inbound.bind(Number(listenPort), '127.0.0.1', () => {
    inbound.setRecvBufferSize(16 * 1024 * 1024);
    console.log('ready');
  });
});
/** Writes the recorded datagrams, each after its u16 length (at `count`, or on exit). */
function save(): void {
  if (!values.record) return;
  const parts = recorded.flatMap((d) => {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(d.length);
    return [len, d];
  });
  writeFileSync(values.record, Buffer.concat(parts));
}
process.on('SIGTERM', () => {
  save();
  console.log(JSON.stringify({ relayed, dropped, bursts, recorded: recorded.length }));
  process.exit(0);
});
