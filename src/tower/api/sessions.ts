/**
 * The dashboard's sessions and the throttle on failed logins. A login with a valid token
 * gets a random session id (the cookie), valid for 12 hours and only while the token stays
 * in the tokens file; the token itself never goes into the cookie.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Tokens, User } from './tokens.js';

export const SESSION_MAX_AGE_S = 12 * 3600;
const MAX_SESSIONS = 10_000;

interface Session {
  tokenDigest: Buffer;
  expiresMs: number;
}

const key = (id: string) => createHash('sha256').update(id).digest('hex');

export class Sessions {
  private readonly byKey = new Map<string, Session>();

  constructor(
    private readonly tokens: Tokens,
    private readonly maxAgeS = SESSION_MAX_AGE_S,
  ) {}

  /** A new session for the holder of `token` (already checked): its id. */
  open(token: string): string {
    const id = randomBytes(32).toString('base64url');
    if (this.byKey.size >= MAX_SESSIONS) {
      const oldest = this.byKey.keys().next().value;
      if (oldest !== undefined) this.byKey.delete(oldest);
    }
    this.byKey.set(key(id), {
      tokenDigest: this.tokens.digest(token),
      expiresMs: Date.now() + this.maxAgeS * 1000,
    });
    return id;
  }

  /** The user of a live session: not expired, and its token not revoked since. */
  user(id: string | undefined): User | undefined {
    if (!id) return undefined;
    const k = key(id);
    const s = this.byKey.get(k);
    if (!s) return undefined;
    const user = Date.now() < s.expiresMs ? this.tokens.holder(s.tokenDigest) : undefined;
    if (!user) this.byKey.delete(k);
    return user;
  }

  close(id: string | undefined): void {
    if (id) this.byKey.delete(key(id));
  }
}

/**
 * Failed token checks per client address: past `max` in a minute, the address must wait
 * until its oldest failure of that minute is a minute old, whatever token it brings.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly max: number,
    private readonly windowMs = 60_000,
  ) {}

  /** Seconds the address must still wait, or 0. */
  waitS(address: string): number {
    const times = this.recent(address);
    if (times.length < this.max) return 0;
    return Math.max(1, Math.ceil(((times[0] as number) + this.windowMs - Date.now()) / 1000));
  }

  failed(address: string): void {
    const times = this.recent(address);
    times.push(Date.now());
    if (times.length > this.max) times.shift();
    this.failures.delete(address);
    this.failures.set(address, times);
    if (this.failures.size > MAX_SESSIONS) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
  }

  private recent(address: string): number[] {
    const cut = Date.now() - this.windowMs;
    const times = (this.failures.get(address) ?? []).filter((t) => t > cut);
    if (times.length) this.failures.set(address, times);
    else this.failures.delete(address);
    return times;
  }
}
