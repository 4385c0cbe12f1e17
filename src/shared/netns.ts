/**
 * Runs synchronous code inside another network namespace by switching the calling
 * thread with setns(2) and switching back. Only the main JS thread moves, and only for
 * the duration of `fn`, so no other JS runs in between; libuv's threads stay where they are.
 * Needed because interfaces (tc hooks, tcx links, ifindex) belong to a namespace.
 */
import { closeSync, openSync } from 'node:fs';
import { SysError } from './errno.js';
import { errno, libc } from './libc.js';

const CLONE_NEWNET = 0x40000000;

export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

export function inNetns<T>(name: string | undefined, fn: () => T): T {
  if (!name) return fn();
  const home = openSync('/proc/thread-self/ns/net', 'r');
  let target: number;
  try {
    target = openSync(netnsPath(name), 'r');
  } catch (err) {
    closeSync(home);
    throw new Error(`network namespace ${name} does not exist (${(err as Error).message})`);
  }
  try {
    if (libc.setns(target, CLONE_NEWNET) !== 0) throw new SysError(`setns(${name})`, errno());
    try {
      return fn();
    } finally {
      if (libc.setns(home, CLONE_NEWNET) !== 0) {
        // Continuing in the wrong namespace would silently misdirect every later socket.
        console.error(`tacmesh: cannot return to the original network namespace: errno ${errno()}`);
        process.abort();
      }
    }
  } finally {
    closeSync(target);
    closeSync(home);
  }
}
