/**
 * API tokens: who may read (viewer) and who may also change things (operator). Kept in a
 * YAML file that must not be readable by group or others, re-read when it changes (so a
 * token is added or revoked without a restart):
 *   tokens:
 *     - { name: alice, role: operator, token: <at least 24 characters> }
 * A token is checked by comparing keyed digests of fixed length against every entry, in
 * constant time and without stopping at a match: the time taken tells neither the token's
 * length nor where in the file it is.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { towerLog as log } from '../../shared/log.js';
import type { Role, User } from './user-types.js';

export type { Role, User } from './user-types.js';

const TokenFile = z.object({
  tokens: z.array(
    z.object({
      name: z.string().min(1),
      role: z.enum(['viewer', 'operator'] satisfies Role[]),
      token: z.string().min(24, 'a token must be at least 24 characters'),
    }),
  ),
});
type TokenFileShape = z.infer<typeof TokenFile>;

export function checkSecretFile(path: string): void {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new Error(`${path} is readable by others (mode ${mode.toString(8)}): chmod 600 ${path}`);
  }
}

function readTokenFile(path: string): TokenFileShape {
  checkSecretFile(path);
  const parsed = TokenFile.safeParse(parse(readFileSync(path, 'utf8')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${path}: ${issue?.path.join('.') || '(top)'}: ${issue?.message}`);
  }
  return parsed.data;
}

/** How often at most the file is looked at for a change. */
const RECHECK_MS = 1000;

interface Entry extends User {
  digest: Buffer;
}

export class Tokens {
  /** Digests are keyed with a secret of this process: equal digests mean equal tokens. */
  private readonly key = randomBytes(32);
  private entries: Entry[] = [];
  private stamp = '';
  private checkedMs = 0;

  private constructor(readonly path: string) {
    this.reload(true);
  }

  static load(path: string): Tokens {
    return new Tokens(path);
  }

  digest(token: string): Buffer {
    return createHmac('sha256', this.key).update(token).digest();
  }

  /**
   * Re-reads the file if it changed. A file that became unreadable or invalid refuses every
   * token until it is fixed (it may have been edited to revoke one).
   */
  private reload(strict = false): void {
    const now = Date.now();
    if (!strict && now - this.checkedMs < RECHECK_MS) return;
    this.checkedMs = now;
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}:${st.mode}`;
      if (stamp === this.stamp) return;
      const file = readTokenFile(this.path);
      this.entries = file.tokens.map((t) => ({ name: t.name, role: t.role, digest: this.digest(t.token) }));
      if (this.stamp) log.info({ file: this.path, tokens: this.entries.length }, 'API tokens re-read');
      this.stamp = stamp;
    } catch (err) {
      if (strict) throw err;
      if (this.stamp !== 'failed')
        log.error({ file: this.path, err }, 'API tokens unreadable: every token refused');
      this.entries = [];
      this.stamp = 'failed';
    }
  }

  /** The holder of a token, compared in constant time against every entry. */
  check(token: string | undefined): User | undefined {
    if (!token) return undefined;
    return this.holder(this.digest(token));
  }

  /** The holder of the token with this digest, if the file still has it. */
  holder(digest: Buffer): User | undefined {
    this.reload();
    let found: Entry | undefined;
    for (const e of this.entries) {
      const same = timingSafeEqual(e.digest, digest);
      found = same && !found ? e : found;
    }
    return found ? { name: found.name, role: found.role } : undefined;
  }
}

/** Adds a new random token to the file (created 0600 if missing) and returns it. */
export function createToken(path: string, name: string, role: Role): string {
  const file: TokenFileShape = existsSync(path) ? readTokenFile(path) : { tokens: [] };
  if (file.tokens.some((t) => t.name === name)) throw new Error(`${path} already has a token named ${name}`);
  const token = randomBytes(24).toString('base64url');
  file.tokens.push({ name, role, token });
  writeFileAtomic(path, stringify(file), 0o600);
  return token;
}

/** Removes the token of `name` from the file; a running tower refuses it within a second. */
export function revokeToken(path: string, name: string): void {
  const file = readTokenFile(path);
  const kept = file.tokens.filter((t) => t.name !== name);
  if (kept.length === file.tokens.length) throw new Error(`${path} has no token named ${name}`);
  writeFileAtomic(path, stringify({ tokens: kept }), 0o600);
}
