/**
 * The leader lease of towers sharing a bus: a key in a KV bucket whose entries live
 * `ttlMs`. The leader renews it (an update at the revision it holds) three times a lease;
 * the others try to create it, which succeeds only once it has lapsed — the leader gone, or
 * cut off from the bus — and meanwhile read who holds it. Only the leader takes node streams.
 */
import { type KV, StringCodec } from 'nats';
import { towerLog } from '../../shared/log.js';
import type { BusConnection } from './connection.js';

const log = towerLog.child({ stage: 'bus-lease' });
const KEY = 'leader';
const codec = StringCodec();

export function leaseBucket(domain: string): string {
  return `tower_lease_${domain}`;
}

export class LeaderLease {
  /** Who holds the lease, as far as this tower knows (null: nobody, or not known). */
  leader: string | null = null;
  private revision = 0;
  private timer: NodeJS.Timeout | undefined;
  private ticking = Promise.resolve();

  private constructor(
    private readonly kv: KV,
    readonly holder: string,
    private readonly ttlMs: number,
  ) {}

  static async start(bus: BusConnection, holder: string, ttlMs: number): Promise<LeaderLease> {
    const kv = await bus.js.views.kv(leaseBucket(bus.config.domain), {
      history: 1,
      ttl: ttlMs,
      replicas: bus.config.replicas,
    });
    const lease = new LeaderLease(kv, holder, ttlMs);
    await lease.tick();
    lease.timer = setInterval(() => {
      lease.ticking = lease.ticking.then(() => lease.tick());
    }, ttlMs / 3);
    return lease;
  }

  get leads(): boolean {
    return this.leader === this.holder;
  }

  private async tick(): Promise<void> {
    const before = this.leader;
    try {
      if (this.leads) {
        this.revision = await this.kv.update(KEY, codec.encode(this.holder), this.revision);
      } else {
        try {
          this.revision = await this.kv.create(KEY, codec.encode(this.holder));
          this.leader = this.holder;
        } catch {
          const e = await this.kv.get(KEY);
          this.leader = e && e.operation === 'PUT' ? codec.decode(e.value) : null;
        }
      }
    } catch (err) {
      // A renewal refused (another holds it now) or the bus away: this tower does not lead.
      if (this.leads) log.error({ err }, 'leader lease lost');
      this.leader = null;
    }
    if (this.leader !== before)
      log.info(
        { leader: this.leader, self: this.holder, ttlMs: this.ttlMs },
        this.leads ? 'leading' : 'following',
      );
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.ticking;
    // Leave at once, so a standby need not wait for the lease to lapse.
    if (this.leads) await this.kv.delete(KEY).catch(() => undefined);
  }
}
