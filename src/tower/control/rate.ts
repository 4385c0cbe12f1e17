/** A token bucket: `rate` per second on average, `burst` at once. */
export class Bucket {
  private tokens: number;
  private atMs = Date.now();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  /** Takes one token if there is one. */
  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.atMs) / 1000) * this.rate);
    this.atMs = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** One bucket per key (a node's name), made on first use. */
export class Buckets {
  private readonly byKey = new Map<string, Bucket>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {}

  take(key: string): boolean {
    let b = this.byKey.get(key);
    if (!b) {
      b = new Bucket(this.rate, this.burst);
      this.byKey.set(key, b);
    }
    return b.take();
  }
}
