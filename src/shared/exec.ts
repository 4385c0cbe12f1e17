import { execFile } from 'node:child_process';

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** Runs a program (no shell) and rejects with its stderr when it fails. */
export function run(cmd: string, args: string[], options: { timeoutMs?: number; input?: string } = {}) {
  return new Promise<ExecResult>((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const why = stderr.trim() || err.message;
          reject(new Error(`${cmd} ${args.join(' ')}: ${why}`));
        } else resolve({ stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}
