/**
 * Keeps the services' QoS rules on their current paths (docs/services.md): every second the
 * intents are compiled against the newest route reports and the operator's policy; a result
 * that differs from the one in force is set once it has stayed the same for `holdMs` (so a
 * flapping route does not rewrite the policy every report). The first result is set at once.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { towerLog } from '../../shared/log.js';
import { newestRoutes, parseTables, tracePath } from '../api/mesh-paths.js';
import type { QosService } from '../qos/service.js';
import { compileServices } from './compile.js';
import type { ServiceRegistry } from './registry.js';

const log = towerLog.child({ stage: 'services-qos' });

export interface ServiceQosDeps {
  db: DuckDBConnection;
  registry: ServiceRegistry;
  qos: QosService;
  nodeOf: (address: string) => string | null;
  holdMs?: number;
  everyMs?: number;
}

export class ServiceQosCompiler {
  private timer: NodeJS.Timeout | undefined;
  private inForce: string | undefined;
  private pending: { key: string; sinceMs: number } | undefined;
  private running = false;

  constructor(private readonly deps: ServiceQosDeps) {}

  start(): void {
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = true;
      this.tick()
        .catch((err: Error) => log.error({ err }, "the services' QoS rules not compiled"))
        .finally(() => {
          this.running = false;
        });
    }, this.deps.everyMs ?? 1000);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async tick(nowMs = Date.now()): Promise<void> {
    const { db, registry, qos, nodeOf } = this.deps;
    // Nothing to compile, nothing in force: no query.
    if (this.inForce === undefined && registry.services.every((s) => s.guaranteeBps === undefined)) return;
    const tables = parseTables(await newestRoutes(db, nowMs));
    const compiled = compileServices(registry.services, qos.operatorPolicy, (from, to, address) =>
      tracePath(from, to, `${address}/32`, tables, nodeOf),
    );
    const key = JSON.stringify(compiled);
    if (key === this.inForce) {
      this.pending = undefined;
      return;
    }
    if (this.inForce !== undefined) {
      if (this.pending?.key !== key) {
        this.pending = { key, sinceMs: nowMs };
        return;
      }
      if (nowMs - this.pending.sinceMs < (this.deps.holdMs ?? 2000)) return;
    }
    this.inForce = key;
    this.pending = undefined;
    await qos.setServices(compiled);
  }
}
