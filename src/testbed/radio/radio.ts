/**
 * radio <radio.json>: the testbed's radio at one node — a DLEP modem (RFC 8175) per radio
 * link end, on the node's loopback, reporting the neighbour at the link's other end with the
 * rate and latency the testbed emulates. The testbed rewrites the file to change a link
 * (`link set`, `link cut`); the radio sends Destination Update or Down in answer.
 */
import { readFileSync, watchFile } from 'node:fs';
import { DlepModem } from './dlep-modem.js';

export interface RadioFile {
  links: {
    /** Where the node's router reaches this link's modem. */
    address: string;
    port: number;
    heartbeatMs?: number;
    neighbour: { mac: string; addresses: string[] };
    rateMbit: number;
    maxRateMbit: number;
    latencyUs: number;
    /** False: the neighbour is out of range (the link is cut). */
    up: boolean;
  }[];
}

type Link = RadioFile['links'][number];

const [file = ''] = process.argv.slice(2);
const read = (): RadioFile => JSON.parse(readFileSync(file, 'utf8')) as RadioFile;
const bps = (mbit: number) => BigInt(Math.round(mbit * 1e6));
const metrics = (l: Link) => ({
  maxRxBps: bps(l.maxRateMbit),
  maxTxBps: bps(l.maxRateMbit),
  currentRxBps: bps(l.rateMbit),
  currentTxBps: bps(l.rateMbit),
  latencyUs: BigInt(l.latencyUs),
});

let current = read();
const modems = await Promise.all(
  current.links.map((l) =>
    DlepModem.start({
      address: l.address,
      port: l.port,
      heartbeatMs: l.heartbeatMs ?? 1000,
      sessionMetrics: metrics(l),
    }),
  ),
);
current.links.forEach((l, i) => {
  if (l.up) modems[i]?.destinationUp(l.neighbour.mac, l.neighbour.addresses, metrics(l));
});
console.log('ready');

watchFile(file, { interval: 200 }, () => {
  let next: RadioFile;
  try {
    next = read();
  } catch {
    return; // caught mid-write: the next poll reads it whole
  }
  next.links.forEach((l, i) => {
    const was = current.links[i];
    const modem = modems[i];
    if (!was || !modem) return;
    if (was.up && !l.up) modem.destinationDown(l.neighbour.mac);
    else if (!was.up && l.up) modem.destinationUp(l.neighbour.mac, l.neighbour.addresses, metrics(l));
    else if (l.up && (l.rateMbit !== was.rateMbit || l.latencyUs !== was.latencyUs))
      modem.destinationUpdate(l.neighbour.mac, metrics(l));
  });
  current = next;
});

process.on('SIGTERM', () => void Promise.all(modems.map((m) => m.close())).then(() => process.exit(0)));
