/**
 * The node side of bench/tower, in its own process as on a real node: sends `rows` flow
 * records through TowerLink (gRPC, mTLS) and prints {"ms": <time until all were acked>}.
 *   sender.ts <tower host:port> <pki dir> <state dir> <rows> <node name>
 */
import { SeqAllocator } from '../../src/node/export/seq.js';
import { TowerLink } from '../../src/node/export/tower-client.js';
import { benchRecords, benchStats } from './records.js';

const [tower = '', pki = '', state = '', rowsArg = '0', node = 'bench'] = process.argv.slice(2);
const rows = Number(rowsArg);
const BATCH = 5000;
const link = new TowerLink(
  {
    node,
    tower,
    tls: { caCert: `${pki}/ca.crt`, cert: `${pki}/${node}.crt`, key: `${pki}/${node}.key` },
    hello: () => ({ subnets: [], slices: [], position: null }),
    onMonitorConfig: () => undefined,
    spool: { dir: `${state}/spool`, maxBytes: 8 * 1024 ** 3 },
  },
  new SeqAllocator(state),
);
await link.start();
while (!link.connected) await new Promise((r) => setTimeout(r, 20));
const now = Date.now();
const batches = Array.from({ length: Math.ceil(rows / BATCH) }, (_, b) =>
  benchRecords(Math.min(BATCH, rows - b * BATCH), b * BATCH, now),
);
const t0 = performance.now();
for (const b of batches) {
  link.flows(b);
  link.stats(benchStats());
  if (link.unacknowledged > 200_000)
    while (link.unacknowledged > 50_000) await new Promise((r) => setTimeout(r, 2));
}
while (link.unacknowledged > 0) await new Promise((r) => setTimeout(r, 2));
console.log(JSON.stringify({ ms: performance.now() - t0 }));
await link.stop();
