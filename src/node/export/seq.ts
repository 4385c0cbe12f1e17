/**
 * The node's record sequence numbers: strictly increasing for the node's whole life, across
 * restarts, so the tower can recognise a resend by (node, seq). Blocks are reserved on
 * disk before use (written durably: atomic-file.ts); a crash skips the rest of a block,
 * which leaves a harmless gap.
 *
 * The file alone is not trusted to be current: a power cut can leave it empty or holding an
 * older reservation. Whoever knows a higher seq in use (the spool's last batch, the tower's
 * stored seq) moves the allocator past it with skipTo(), so no seq is ever handed out twice.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { nodeLog as log } from '../../shared/log.js';

const BLOCK = 100_000;

export class SeqAllocator {
  private next: number;
  private reservedTo: number;
  private readonly file: string;

  constructor(stateDir: string) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    this.file = join(stateDir, 'seq');
    this.next = this.read();
    this.reservedTo = this.next;
    this.reserve();
  }

  /** The reserved end in the file; 1 when there is none, or when it is unreadable (logged). */
  private read(): number {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 1;
      throw err;
    }
    const start = Number(text.trim());
    if (text.trim() !== '' && Number.isSafeInteger(start) && start >= 1) return start;
    log.warn(
      { file: this.file, content: text.slice(0, 40) },
      'seq file unreadable (a power cut?): starting past the last seq the spool holds',
    );
    return 1;
  }

  private reserve(): void {
    this.reservedTo = this.next + BLOCK;
    writeFileAtomic(this.file, `${this.reservedTo}\n`);
  }

  /** Makes the next seq at least `seq` (a seq known to be in use lies below it). */
  skipTo(seq: number): void {
    if (seq <= this.next) return;
    log.warn({ from: this.next, to: seq }, 'seq file was behind the seqs in use: skipping ahead');
    this.next = seq;
    this.reserve();
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
