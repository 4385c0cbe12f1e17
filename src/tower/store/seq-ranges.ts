/**
 * A set of sequence numbers kept as sorted, disjoint [lo, hi] ranges. A node's records
 * arrive mostly in order, so the set stays a handful of ranges whatever its size. A node
 * that sends sparse seqs would make it grow with every record: past `maxRanges` the oldest
 * gaps are closed (their seqs count as held, a late record there as a resend), so the set
 * and the cost of adding to it stay bounded.
 */
export const MAX_RANGES = 10_000;

export class SeqRanges {
  private los: number[] = [];
  private his: number[] = [];
  /** Gaps closed to keep within maxRanges, ever. */
  closedGaps = 0;

  constructor(private readonly maxRanges = MAX_RANGES) {}

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
    this.addAll([[lo, hi]]);
  }

  /**
   * Adds many seqs at once (a batch's, in any order): one linear merge of the sorted runs
   * with the ranges held, then the oldest gaps closed if there are too many. Returns the
   * number of gaps closed by this call.
   */
  addSeqs(seqs: Iterable<number>): number {
    const sorted = Float64Array.from(seqs).sort();
    const runs: [number, number][] = [];
    for (const s of sorted) {
      const last = runs[runs.length - 1];
      if (last && s <= last[1] + 1) last[1] = Math.max(last[1], s);
      else runs.push([s, s]);
    }
    return this.addAll(runs);
  }

  /** `runs` sorted by lo. */
  private addAll(runs: [number, number][]): number {
    if (runs.length === 0) return 0;
    const [firstLo] = runs[0] as [number, number];
    const lastHi = this.his[this.his.length - 1];
    if (lastHi === undefined || firstLo > lastHi + 1) {
      // the common case: everything is past what is held
      for (const [lo, hi] of runs) this.push(lo, hi);
    } else {
      const los = this.los;
      const his = this.his;
      this.los = [];
      this.his = [];
      let i = 0;
      let j = 0;
      while (i < los.length || j < runs.length) {
        const takeHeld =
          j >= runs.length || (i < los.length && (los[i] as number) <= (runs[j] as number[])[0]!);
        if (takeHeld) {
          this.push(los[i] as number, his[i] as number);
          i++;
        } else {
          const [lo, hi] = runs[j] as [number, number];
          this.push(lo, hi);
          j++;
        }
      }
    }
    const over = this.los.length - this.maxRanges;
    if (over <= 0) return 0;
    // Close the `over` oldest gaps: the first over + 1 ranges become one.
    this.his.splice(0, over);
    this.los.splice(1, over);
    this.closedGaps += over;
    return over;
  }

  /** Appends [lo, hi], merged into the last range when they touch (input sorted by lo). */
  private push(lo: number, hi: number): void {
    const n = this.los.length;
    if (n > 0 && lo <= (this.his[n - 1] as number) + 1) {
      this.his[n - 1] = Math.max(this.his[n - 1] as number, hi);
      return;
    }
    this.los.push(lo);
    this.his.push(hi);
  }

  get size(): number {
    return this.los.length;
  }

  /** The highest seq stored with no gap below it from the first stored one. */
  get contiguousHigh(): number {
    return this.his[0] ?? 0;
  }

  get ranges(): [number, number][] {
    return this.los.map((lo, i) => [lo, this.his[i] as number]);
  }
}
