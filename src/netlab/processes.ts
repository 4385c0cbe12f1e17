/**
 * The testbed's long-lived processes: started detached (they outlive `testbed up`), each
 * inside its namespace, with its output in a log file; stopped by PID from the state file.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../shared/proc.js';
import { requireProgram } from '../shared/programs.js';

export { isAlive };

/** The processes this process started, and how those that ended did, by PID. */
const started = new Set<number>();
const exits = new Map<number, string>();

/** Starts `cmd` in `netns` (or here), detached, logging to <logDir>/<name>.log; returns its PID. */
export function startDetached(
  name: string,
  netns: string | null,
  cmd: string,
  args: string[],
  logDir: string,
): number {
  requireProgram(cmd);
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
    const pid = child.pid;
    started.add(pid);
    child.on('exit', (code, signal) =>
      exits.set(pid, signal ? `was killed by ${signal}` : `exited with status ${code}`),
    );
    child.unref();
    return pid;
  } finally {
    closeSync(log);
  }
}

export class ProcessExitedError extends Error {
  override name = 'ProcessExitedError';
}

/** Those of `pids` (name → PID) that are no longer running: how each ended, and its log's end. */
export function deadProcesses(
  pids: Record<string, number>,
  logDir: string,
): { name: string; message: string }[] {
  return (
    Object.entries(pids)
      // A child of this process counts once its exit status is in (a moment after it dies).
      .filter(([, pid]) => !isAlive(pid) && (exits.has(pid) || !started.has(pid)))
      .map(([name, pid]) => ({
        name,
        message: `${name} (PID ${pid}) ${exits.get(pid) ?? 'is no longer running'}; the last lines of ${join(logDir, `${name}.log`)}:\n${logTail(logDir, name)}`,
      }))
  );
}

/**
 * Throws when any of `pids` is no longer running, naming it, how it ended and its last
 * log lines: a daemon that dies at start is reported at once, not by a later timeout.
 */
export function assertRunning(pids: Record<string, number>, logDir: string): void {
  const [dead] = deadProcesses(pids, logDir);
  if (dead) throw new ProcessExitedError(dead.message);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * SIGTERM, then SIGKILL for whatever is still alive after the grace period; returns once
 * every one has exited, or throws naming those that outlived SIGKILL too.
 */
export async function stopAll(pids: number[], graceMs = 3000): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    for (const pid of pids.filter(isAlive)) {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  const waitGone = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (pids.some(isAlive) && Date.now() < deadline) await sleep(50);
  };
  signal('SIGTERM');
  await waitGone(graceMs);
  signal('SIGKILL');
  await waitGone(5000);
  const left = pids.filter(isAlive);
  if (left.length) throw new Error(`processes still running after SIGKILL: ${left.join(', ')}`);
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
