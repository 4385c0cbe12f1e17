/**
 * Prometheus metrics for a tacmesh process (prom-client): one registry per process, every
 * value read from the process's own counters once per scrape (a snapshot), served at
 * GET /metrics on a listener of its own. The names of each process are documented beside
 * its definitions (diode/metrics.ts, node/metrics.ts, tower/metrics.ts) and in
 * docs/operations.md.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { log } from './log.js';
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

export class PromMetrics<S> {
  readonly registry = new Registry();
  private current: S | undefined;
  private server: Server | undefined;

  constructor(
    prefix: string,
    labels: Record<string, string>,
    defs: MetricDef<S>[],
    private readonly snapshot: () => S,
  ) {
    this.registry.setDefaultLabels(labels);
    for (const def of defs) {
      const common = { name: `${prefix}${def.name}`, help: def.help, labelNames: def.labelNames ?? [] };
      const samples = () => (this.current ? def.samples(this.current) : []);
      const registers = [this.registry];
      if (def.type === 'counter') {
        new Counter({
          ...common,
          registers,
          collect() {
            this.reset();
            for (const s of samples()) this.inc(s.labels ?? {}, Math.max(0, s.value));
          },
        });
      } else {
        new Gauge({
          ...common,
          registers,
          collect() {
            this.reset();
            for (const s of samples()) this.set(s.labels ?? {}, s.value);
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

  /** The port it listens on (after listen). */
  get port(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  /** An HTTP listener of its own answering GET /metrics (nothing else, no authentication). */
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
