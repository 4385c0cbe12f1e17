/**
 * API tokens: who may read (viewer) and who may also change things (operator). Kept in a
 * YAML file the tower reads at start; it must not be readable by group or others.
 *   tokens:
 *     - { name: alice, role: operator, token: <at least 24 characters> }
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { z } from 'zod';

export type Role = 'viewer' | 'operator';

const TokenFile = z.object({
  tokens: z.array(
    z.object({
      name: z.string().min(1),
      role: z.enum(['viewer', 'operator']),
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

export class Tokens {
  private constructor(private readonly entries: TokenFileShape['tokens']) {}

  static load(path: string): Tokens {
    return new Tokens(readTokenFile(path).tokens);
  }

  /** The holder of a token, compared in constant time. */
  check(token: string | undefined): { name: string; role: Role } | undefined {
    if (!token) return undefined;
    const given = Buffer.from(token);
    for (const e of this.entries) {
      const want = Buffer.from(e.token);
      if (want.length === given.length && timingSafeEqual(want, given)) return { name: e.name, role: e.role };
    }
    return undefined;
  }
}

/** Adds a new random token to the file (created 0600 if missing) and returns it. */
export function createToken(path: string, name: string, role: Role): string {
  const file: TokenFileShape = existsSync(path) ? readTokenFile(path) : { tokens: [] };
  if (file.tokens.some((t) => t.name === name)) throw new Error(`${path} already has a token named ${name}`);
  const token = randomBytes(24).toString('base64url');
  file.tokens.push({ name, role, token });
  writeFileSync(path, stringify(file), { mode: 0o600 });
  return token;
}
