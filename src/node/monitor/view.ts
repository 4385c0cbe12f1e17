/** The live terminal view of `tacmesh monitor`: top flows by rate and recent HTTP lines. */
import { type FlowRecord, type HttpEvent, type MonitorStats, PROTOCOL_NAMES } from './records.js';

const RECENT_HTTP = 12;
const TOP_FLOWS = 15;

function rate(bytes: number, ms: number): string {
  const bits = (bytes * 8 * 1000) / Math.max(ms, 1);
  if (bits >= 1e9) return `${(bits / 1e9).toFixed(2)} Gb/s`;
  if (bits >= 1e6) return `${(bits / 1e6).toFixed(2)} Mb/s`;
  if (bits >= 1e3) return `${(bits / 1e3).toFixed(1)} kb/s`;
  return `${bits.toFixed(0)} b/s`;
}

function endpoint(addr: string, port: number, protocol: number): string {
  if (protocol !== 6 && protocol !== 17) return addr;
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

export class TerminalView {
  private flows: FlowRecord[] = [];
  private readonly http: HttpEvent[] = [];

  constructor(
    private readonly intervalMs: number,
    private readonly out: NodeJS.WriteStream = process.stdout,
  ) {}

  onFlows(records: FlowRecord[]): void {
    this.flows = records;
  }

  onHttp(event: HttpEvent): void {
    this.http.push(event);
    if (this.http.length > RECENT_HTTP) this.http.shift();
  }

  render(stats: MonitorStats): void {
    const lines: string[] = [];
    lines.push(
      `tacmesh monitor  node ${stats.node}  interfaces ${stats.interfaces.join(', ')}  ${new Date(stats.time).toISOString()}`,
    );
    lines.push(
      `packets ${stats.packetsSeen}  bytes ${stats.bytesSeen}  flows ${stats.activeFlows}  http ${stats.httpEvents}` +
        `  ring-full ${stats.eventsDropped}  table-full ${stats.flowMapFull}  malformed ${stats.malformed}`,
    );
    lines.push('', 'TOP FLOWS (this interval)');
    lines.push(
      `${'iface'.padEnd(14)} ${'dir'.padEnd(3)} ${'proto'.padEnd(5)} ${'source'.padEnd(24)} ${'destination'.padEnd(24)} ${'rate'.padStart(11)} ${'pkts'.padStart(8)}`,
    );
    const top = [...this.flows].sort((a, b) => b.bytes - a.bytes).slice(0, TOP_FLOWS);
    for (const f of top) {
      lines.push(
        `${f.iface.padEnd(14)} ${(f.direction === 'ingress' ? 'in' : 'out').padEnd(3)} ${(PROTOCOL_NAMES[f.protocol] ?? String(f.protocol)).padEnd(5)} ${endpoint(f.src, f.srcPort, f.protocol).padEnd(24)} ${endpoint(f.dst, f.dstPort, f.protocol).padEnd(24)} ${rate(f.bytes, this.intervalMs).padStart(11)} ${String(f.packets).padStart(8)}`,
      );
    }
    lines.push('', 'RECENT HTTP');
    for (const h of this.http) {
      const time = new Date(h.time).toISOString().slice(11, 23);
      const what =
        h.kind === 'request'
          ? `${h.method} ${h.host ? `http://${h.host}` : ''}${h.url}${h.truncated ? '…' : ''}`
          : `${h.status} ${h.version}`;
      lines.push(
        `${time} ${h.iface.padEnd(14)} ${endpoint(h.src, h.srcPort, 6).padEnd(24)} → ${endpoint(h.dst, h.dstPort, 6).padEnd(24)} ${what}`,
      );
    }
    lines.push('', 'stdin: sample <N> | l3|l4|l7 on|off | enable|disable <iface>      Ctrl-C to stop');
    // Clear and redraw on a terminal; a plain stream gets one frame after another.
    this.out.write(`${this.out.isTTY ? '\x1b[H\x1b[2J' : '\n'}${lines.join('\n')}\n`);
  }
}
