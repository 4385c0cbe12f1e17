import type { ChildProcess } from 'node:child_process';
import { toolPath as netlabTool, scriptPath } from '../../../src/netlab/tools/index.js';

/**
 * The script of a traffic tool run inside a namespace: `udp` and `tcp` (send, receive, sink)
 * are the tests' own, beside this file; `http` and `relay` are the testbed's (src/netlab/tools).
 */
export function toolPath(name: 'udp' | 'tcp' | 'http' | 'relay'): string {
  return name === 'udp' || name === 'tcp' ? scriptPath(import.meta.url, `./${name}`) : netlabTool(name);
}

/** A running tool process whose stdout is collected from the start. */
export class Tool {
  private out = '';
  private err = '';
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => {
      this.out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.err += d.toString();
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  get stdout(): string {
    return this.out;
  }

  get stderr(): string {
    return this.err;
  }

  /** Resolves once the tool has printed `marker` as a whole line. */
  async line(marker: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.out.split('\n').includes(marker)) {
      if (this.child.exitCode !== null)
        throw new Error(`tool exited (${this.child.exitCode}): ${this.err.trim()}`);
      if (Date.now() > deadline) throw new Error(`no "${marker}" from the tool within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The JSON object on the tool's last line of output, once it exited with status 0. */
  async result<T>(): Promise<T> {
    const code = await this.exited;
    if (code !== 0) throw new Error(`tool exited with ${code}: ${this.err.trim()}`);
    const last = this.out.trim().split('\n').pop() ?? '';
    return JSON.parse(last) as T;
  }
}
