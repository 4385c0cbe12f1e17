/**
 * The testbed's long-lived processes: started detached (they outlive `testbed up`), each
 * inside its namespace, with its output in a log file; stopped by PID from the state file.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../shared/proc.js';

export { isAlive };

/** Starts `cmd` in `netns` (or here), detached, logging to <logDir>/<name>.log; returns its PID. */
export function startDetached(
  name: string,
  netns: string | null,
  cmd: string,
  args: string[],
  logDir: string,
): number {
  const log = openSync(join(logDir, `${name}.log`), 'a');
  try {
    // nsenter, not `ip netns exec`: only the network namespace changes. `ip netns exec` also
    // gives the process a mount namespace of its own, and then the namespaces a node's agent
    // makes (`ip netns add`) would be mounted where no one else can enter them.
    const child = netns
      ? spawn('nsenter', [`--net=/run/netns/${netns}`, '--', cmd, ...args], {
          detached: true,
          stdio: ['ignore', log, log],
        })
      : spawn(cmd, args, { detached: true, stdio: ['ignore', log, log] });
    if (!child.pid) throw new Error(`could not start ${name} (${cmd})`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(log);
  }
}

/** SIGTERM, then SIGKILL for whatever is still alive after the grace period. */
export async function stopAll(pids: number[], graceMs = 3000): Promise<void> {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + graceMs;
  while (pids.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids.filter(isAlive)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** The last lines of a process's log, for an error message. */
export function logTail(logDir: string, name: string, lines = 15): string {
  try {
    return readFileSync(join(logDir, `${name}.log`), 'utf8')
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .join('\n');
  } catch {
    return '(no log)';
  }
}
