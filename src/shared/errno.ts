import { constants } from 'node:os';

const names = new Map<number, string>(Object.entries(constants.errno).map(([name, code]) => [code, name]));

/** The symbolic name of an errno value (positive or negative), e.g. 2 -> "ENOENT". */
export function errnoName(code: number): string {
  return names.get(Math.abs(code)) ?? `errno ${Math.abs(code)}`;
}

/** An OS-level failure that keeps the errno, its name and any diagnostic text the callee produced. */
export class SysError extends Error {
  readonly errno: number;
  readonly code: string;
  readonly detail: string;

  constructor(what: string, errno: number, detail = '') {
    const code = errnoName(errno);
    super(`${what}: ${code}${detail ? `\n${detail}` : ''}`);
    this.name = 'SysError';
    this.errno = Math.abs(errno);
    this.code = code;
    this.detail = detail;
  }
}
