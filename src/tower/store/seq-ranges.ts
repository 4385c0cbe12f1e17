/**
 * A set of sequence numbers kept as sorted, disjoint [lo, hi] ranges. A node's records
 * arrive mostly in order, so the set stays a handful of ranges whatever its size.
 */
export class SeqRanges {
  private los: number[] = [];
  private his: number[] = [];

  /** Index of the last range starting at or before seq, or -1. */
  private find(seq: number): number {
    let lo = 0;
    let hi = this.los.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.los[mid] as number) <= seq) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return at;
  }

  has(seq: number): boolean {
    const i = this.find(seq);
    return i >= 0 && seq <= (this.his[i] as number);
  }

  addOne(seq: number): void {
    this.add(seq, seq);
  }

  add(lo: number, hi: number): void {
    let i = this.find(lo);
    // merge with the range before when it touches
    if (i >= 0 && (this.his[i] as number) >= lo - 1) {
      lo = this.los[i] as number;
      hi = Math.max(hi, this.his[i] as number);
    } else i++;
    let j = i;
    while (j < this.los.length && (this.los[j] as number) <= hi + 1) {
      hi = Math.max(hi, this.his[j] as number);
      j++;
    }
    this.los.splice(i, j - i, lo);
    this.his.splice(i, j - i, hi);
  }

  /** The highest seq stored with no gap below it from the first stored one. */
  get contiguousHigh(): number {
    return this.his[0] ?? 0;
  }

  get ranges(): [number, number][] {
    return this.los.map((lo, i) => [lo, this.his[i] as number]);
  }
}
