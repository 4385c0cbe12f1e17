/**
 * The default duplicate filter: a sliding bitmap over the link sequence (one bit per
 * original frame, shared by its copies). O(1) per datagram, and unlike the paper's
 * Algorithm 1 it catches copies that do not arrive back to back.
 *
 * A sequence ahead of the highest seen slides the window forward; bits that slide out
 * unseen are frames lost with all their copies, which is how the receiver counts residual
 * loss with no return path. A sequence older than the window is stale: dropped.
 * Sequences are compared as plain numbers, not with serial-number arithmetic: within an
 * epoch they only grow and never wrap (the sender starts a new epoch first, frame.ts
 * SEQ_LIMIT), so a frame recorded any number of frames ago — 2^31 or more — is behind the
 * window, never "ahead" of it.
 */

export type WindowVerdict = 'new' | 'duplicate' | 'stale';

export class SequenceWindow {
  private readonly bits: Uint32Array;
  private readonly mask: number;
  private top = 0;
  private started = false;
  /** Sequence positions from the first frame seen to top, inclusive (no wrap-around). */
  private span = 0;
  /** Link sequences that left the window without ever arriving. */
  lost = 0;

  /** `size` frames of history, rounded up to a power of two (at least 64). */
  constructor(readonly size = 1 << 17) {
    let n = 64;
    while (n < size) n *= 2;
    this.size = n;
    this.mask = n - 1;
    this.bits = new Uint32Array(n / 32);
  }

  accept(seq: number): WindowVerdict {
    seq >>>= 0;
    if (!this.started) {
      this.started = true;
      this.span = 1;
      this.top = seq;
      this.set(seq);
      return 'new';
    }
    const ahead = seq - this.top;
    if (ahead > 0) {
      this.slide(ahead);
      this.top = seq;
      this.set(seq);
      return 'new';
    }
    if (-ahead >= this.size) return 'stale';
    if (this.has(seq)) return 'duplicate';
    this.set(seq);
    return 'new';
  }

  /** Clears the slots of the `ahead` sequences after top, counting those that leave unseen. */
  private slide(ahead: number): void {
    const steps = Math.min(ahead, this.size);
    for (let i = 1; i <= steps; i++) {
      const slot = (this.top + i) >>> 0;
      // The slot now taken by top+i last held top+i-size (if that came after the first frame
      // seen): did it ever arrive?
      if (this.span + i > this.size && !this.has(slot)) this.lost++;
      this.clear(slot);
    }
    // A jump longer than the window: the sequences skipped past it were never seen.
    if (ahead > this.size) this.lost += ahead - this.size;
    this.span += ahead;
  }

  private has(seq: number): boolean {
    const i = seq & this.mask;
    return (this.bits[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  private set(seq: number): void {
    const i = seq & this.mask;
    this.bits[i >>> 5]! |= 1 << (i & 31);
  }

  private clear(seq: number): void {
    const i = seq & this.mask;
    this.bits[i >>> 5]! &= ~(1 << (i & 31));
  }
}
