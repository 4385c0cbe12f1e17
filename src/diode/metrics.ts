/**
 * Prometheus metrics for both sides (prom-client), served at GET /metrics on
 * `metrics.listen`. Every value is read from the same counters the stats file shows, once
 * per scrape. Names (all prefixed `tacmesh_diode_`, label `role` = sender | receiver):
 *
 *   frames_total               frames sent (sender) / accepted (receiver)
 *   copies_total               extra copies sent
 *   repairs_total              FEC repair frames sent / received
 *   duplicates_total           copies dropped by the receiver's window
 *   lost_frames_total          frames lost in every copy and not recovered (gaps)
 *   auth_failures_total        frames refused by the tag check, label reason
 *   fec_blocks_total           blocks by outcome (intact, repaired, failed)
 *   fec_recovered_frames_total frames rebuilt from repairs
 *   fec_min_spare              the smallest spare of any block (symbols beyond K)
 *   sessions_total             TCP sessions by state
 *   files_total                files by state (accepted, sent; delivered, quarantined)
 *   spool_bytes                bytes in the spool
 *   link_up                    1 while heartbeats arrive (receiver)
 *   link_loss_ratio            datagram loss from the sender's counts (receiver)
 *   sender_counter             the sender's counters as its heartbeats report them, label name
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { log } from '../shared/log.js';
import { started } from './started.js';

export interface Sample {
  labels?: Record<string, string>;
  value: number;
}

export interface MetricDef<S> {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  labelNames?: string[];
  samples(s: S): Sample[];
}

export const one = (value: number | null | undefined): Sample[] =>
  value === null || value === undefined ? [] : [{ value }];

/** One sample per key of a record, the key as label `label`. */
export const byLabel = (label: string, record: Record<string, number> | undefined | null): Sample[] =>
  Object.entries(record ?? {}).map(([k, value]) => ({ labels: { [label]: k }, value }));

export class Metrics<S> {
  readonly registry = new Registry();
  private current: S | undefined;
  private server: Server | undefined;

  constructor(
    role: 'sender' | 'receiver',
    defs: MetricDef<S>[],
    private readonly snapshot: () => S,
  ) {
    this.registry.setDefaultLabels({ role });
    const self = this;
    for (const def of defs) {
      const name = `tacmesh_diode_${def.name}`;
      const labelNames = def.labelNames ?? [];
      if (def.type === 'counter') {
        new Counter({
          name,
          help: def.help,
          labelNames,
          registers: [this.registry],
          collect() {
            this.reset();
            for (const s of self.current ? def.samples(self.current) : [])
              this.inc(s.labels ?? {}, Math.max(0, s.value));
          },
        });
      } else {
        new Gauge({
          name,
          help: def.help,
          labelNames,
          registers: [this.registry],
          collect() {
            this.reset();
            for (const s of self.current ? def.samples(self.current) : []) this.set(s.labels ?? {}, s.value);
          },
        });
      }
    }
  }

  /** The exposition text, from a fresh snapshot. */
  async text(): Promise<string> {
    this.current = this.snapshot();
    return this.registry.metrics();
  }

  async listen(at: { host: string; port: number }): Promise<void> {
    const server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      this.text().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    });
    await started(server, (done) => server.listen(at.port, at.host, done));
    this.server = server;
    log.info({ listen: at }, 'metrics at /metrics');
  }

  close(): void {
    this.server?.close();
  }
}
