import { mkdirSync } from 'node:fs';
import { run } from '../../src/shared/exec.js';

/** Runs `fn` with a tmpfs of `size` (e.g. '1m') mounted on `dir`: a real disk that fills up. */
export async function withTmpfs<T>(dir: string, size: string, fn: () => T | Promise<T>): Promise<T> {
  mkdirSync(dir, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tacmesh-test', dir]);
  try {
    return await fn();
  } finally {
    await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
  }
}
