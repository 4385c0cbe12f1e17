import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * The path of a tool script beside this file, with the extension of the running code
 * (.ts under tsx in tests, .js from dist/).
 */
export function toolPath(name: string): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`./${name}${ext}`, import.meta.url));
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
