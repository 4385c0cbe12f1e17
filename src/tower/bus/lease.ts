/**
 * The leader lease of towers sharing a bus: a key in a KV bucket whose entries live
 * `ttlMs`. The leader renews it (an update at the revision it holds) three times a lease;
 * the others try to create it, which succeeds only once it has lapsed — the leader gone, or
 * cut off from the bus — and meanwhile read who holds it (and, when the towers advertise
 * them, its control-plane address, for the nodes a standby refuses). A leader that has not
 * renewed in time (cut from the bus) or whose renewal is refused (another took the lease)
 * stops leading at once, before the lease can lapse at the servers, so two never lead.
 */
import { type KV, StringCodec } from 'nats';
import { towerLog } from '../../shared/log.js';
import type { BusConnection } from './connection.js';

const log = towerLog.child({ stage: 'bus-lease' });
const KEY = 'leader';
const codec = StringCodec();
/** A leader gives up this share of a lease before it could lapse at the servers. */
const SAFETY = 0.9;

export function leaseBucket(domain: string): string {
  return `tower_lease_${domain}`;
}

/** The lease's value: who holds it, and where its control plane listens for nodes. */
interface Holding {
  holder: string;
  address: string | null;
}

function decode(bytes: Uint8Array): Holding {
  try {
    const v = JSON.parse(codec.decode(bytes)) as Partial<Holding>;
    if (typeof v.holder === 'string')
      return { holder: v.holder, address: typeof v.address === 'string' ? v.address : null };
  } catch {
    // not ours: below
  }
  return { holder: 'not known', address: null };
}

export class LeaderLease {
  /** Who holds the lease, as far as this tower knows (null: nobody, or not known). */
  leader: string | null = null;
  /** The leader's advertised control-plane address (null: not advertised, or not known). */
  leaderAddress: string | null = null;
  private revision = 0;
  private timer: NodeJS.Timeout | undefined;
  private lapseTimer: NodeJS.Timeout | undefined;
  private ticking = Promise.resolve();
  private readonly listeners: ((leads: boolean) => void)[] = [];
  /** What was last logged and told to the listeners. */
  private reported: { leader: string | null; leads: boolean } = { leader: null, leads: false };

  private constructor(
    private readonly kv: KV,
    readonly holder: string,
    private readonly ttlMs: number,
    private readonly address: string | null,
  ) {}

  static async start(
    bus: BusConnection,
    holder: string,
    ttlMs: number,
    advertise?: string,
  ): Promise<LeaderLease> {
    const kv = await bus.js.views.kv(leaseBucket(bus.config.domain), {
      history: 1,
      ttl: ttlMs,
      replicas: bus.config.replicas,
    });
    const lease = new LeaderLease(kv, holder, ttlMs, advertise ?? null);
    await lease.tick();
    lease.timer = setInterval(() => {
      lease.ticking = lease.ticking.then(() => lease.tick());
    }, ttlMs / 3);
    return lease;
  }

  get leads(): boolean {
    return this.leader === this.holder;
  }

  /** Called with `leads` each time this tower starts or stops leading. */
  onChange(listener: (leads: boolean) => void): void {
    this.listeners.push(listener);
  }

  private async tick(): Promise<void> {
    const value = codec.encode(JSON.stringify({ holder: this.holder, address: this.address }));
    const sentMs = Date.now();
    try {
      if (this.leads) {
        const revision = await this.kv.update(KEY, value, this.revision);
        // (Given up meanwhile, not renewed in time: the next tick takes it back if still ours.)
        if (this.leads) this.hold(revision, sentMs);
      } else {
        try {
          this.hold(await this.kv.create(KEY, value), sentMs);
        } catch {
          const e = await this.kv.get(KEY);
          const h = e && e.operation === 'PUT' ? decode(e.value) : null;
          if (e && h?.holder === this.holder) {
            // Ours still: a renewal that arrived late, or a restart within a lease.
            this.hold(await this.kv.update(KEY, value, e.revision), sentMs);
          } else {
            this.leader = h?.holder ?? null;
            this.leaderAddress = h?.address ?? null;
          }
        }
      }
    } catch (err) {
      // A renewal refused (another holds it now) or the bus away: this tower does not lead.
      if (this.leads) this.lapse(`renewal failed: ${(err as Error).message}`);
      else this.leader = this.leaderAddress = null;
    }
    this.report();
  }

  /** Taken or renewed by an update sent at `sentMs`: the servers keep it at least a lease from then. */
  private hold(revision: number, sentMs: number): void {
    this.revision = revision;
    this.leader = this.holder;
    this.leaderAddress = this.address;
    clearTimeout(this.lapseTimer);
    const left = sentMs + this.ttlMs * SAFETY - Date.now();
    this.lapseTimer = setTimeout(() => this.lapse('not renewed in time (cut from the bus?)'), left);
  }

  private lapse(why: string): void {
    clearTimeout(this.lapseTimer);
    if (!this.leads) return;
    log.error({ self: this.holder, why }, 'leader lease lost');
    this.leader = this.leaderAddress = null;
    this.report();
  }

  private report(): void {
    const leads = this.leads;
    if (this.leader !== this.reported.leader)
      log.info(
        { leader: this.leader, self: this.holder, ttlMs: this.ttlMs },
        leads ? 'leading' : 'following',
      );
    const changed = leads !== this.reported.leads;
    this.reported = { leader: this.leader, leads };
    if (changed) for (const l of this.listeners) l(leads);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.lapseTimer);
    await this.ticking;
    // Leave at once, so a standby need not wait for the lease to lapse.
    if (this.leads) await this.kv.delete(KEY).catch(() => undefined);
  }
}
