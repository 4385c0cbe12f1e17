import { execFile } from 'node:child_process';
import { requireProgram } from './programs.js';

export interface ExecResult {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  /** Resolve with the output whatever the exit status (a tool that reports its errors on stdout). */
  anyStatus?: boolean;
}

/** Runs a program (no shell) and rejects with its stderr when it fails, or at once when it is not installed. */
export function run(cmd: string, args: string[], options: RunOptions = {}) {
  return new Promise<ExecResult>((resolve, reject) => {
    requireProgram(cmd);
    const child = execFile(
      cmd,
      args,
      { timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const exited = err && typeof err.code === 'number' && !err.killed;
        if (err && !(options.anyStatus && exited)) {
          const why = stderr.trim() || err.message;
          reject(new Error(`${cmd} ${args.join(' ')}: ${why}`));
        } else resolve({ stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}
