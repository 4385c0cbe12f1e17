/**
 * Who is asking: what POST /api/v1/login and GET /api/v1/whoami answer, and what a token
 * grants (tokens.ts). Types only, so the page's build imports nothing else.
 */

export type Role = 'viewer' | 'operator';

export interface User {
  name: string;
  role: Role;
}
