/**
 * The node's record sequence numbers: strictly increasing for the node's whole life, across
 * restarts, so the tower can recognise a resend by (node, seq). Blocks are reserved on
 * disk before use; a crash skips the rest of a block, which leaves a harmless gap.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const BLOCK = 100_000;

export class SeqAllocator {
  private next: number;
  private reservedTo: number;
  private readonly file: string;

  constructor(stateDir: string) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    this.file = join(stateDir, 'seq');
    let start = 1;
    try {
      start = Number(readFileSync(this.file, 'utf8').trim());
      if (!Number.isSafeInteger(start) || start < 1)
        throw new Error(`${this.file} holds "${start}", not a sequence number`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.next = start;
    this.reservedTo = start;
    this.reserve();
  }

  private reserve(): void {
    this.reservedTo = this.next + BLOCK;
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, `${this.reservedTo}\n`);
    renameSync(tmp, this.file);
  }

  take(): number {
    if (this.next >= this.reservedTo) this.reserve();
    return this.next++;
  }

  /** The last seq handed out (0 before the first). */
  get last(): number {
    return this.next - 1;
  }
}
