/** Flow-shaped records for bench/tower: 65,536 address pairs (InfluxDB series) over the last 10 minutes. */
import type { FlowRecord, MonitorStats } from '../../src/node/monitor/records.js';

export const SERIES = 65_536;
export const WINDOW_MS = 10 * 60_000;

export function benchRecords(n: number, offset: number, now: number): FlowRecord[] {
  const out: FlowRecord[] = [];
  for (let i = 0; i < n; i++) {
    const k = (offset + i) % SERIES;
    const t = now - WINDOW_MS + Math.floor(((offset + i) * 7919) % WINDOW_MS);
    out.push({
      node: 'bench',
      iface: 'eth0',
      direction: 'egress',
      ipVersion: 4,
      src: `10.77.${k >> 8}.${k & 255}`,
      dst: `10.77.250.${(k * 31) & 255}`,
      srcPort: 1024 + ((offset + i) % 60000),
      dstPort: 80,
      protocol: 6,
      packets: 10,
      bytes: 1000 + (i % 500),
      tcpFlags: 0x18,
      dscp: 0,
      firstSeen: t - 1000,
      lastSeen: t,
    });
  }
  return out;
}

export function benchStats(): MonitorStats {
  return {
    node: 'bench',
    time: Date.now(),
    interfaces: ['eth0'],
    activeFlows: 0,
    flowsExpired: 0,
    packetsSeen: 0,
    bytesSeen: 0,
    flowMapFull: 0,
    httpEvents: 0,
    eventsDropped: 0,
    l7SampledOut: 0,
    malformed: 0,
    nonIp: 0,
    readMs: 0,
  };
}
