/**
 * How many of n independent trials, each a loss with probability p, may be lost by chance:
 * the exact two-sided interval of the binomial distribution at a confidence (default
 * 99.9 %: each tail at most 0.05 %). A measured loss count outside it says the measurement,
 * not chance, is off.
 */
export function binomialBounds(n: number, p: number, confidence = 0.999): { lo: number; hi: number } {
  if (p <= 0) return { lo: 0, hi: 0 };
  if (p >= 1) return { lo: n, hi: n };
  const tail = (1 - confidence) / 2;
  const pmf: number[] = [];
  // log C(n, k) + k log p + (n − k) log(1 − p), summed in order to stay exact enough for n ≤ 10^4
  let logC = 0;
  for (let k = 0; k <= n; k++) {
    if (k > 0) logC += Math.log(n - k + 1) - Math.log(k);
    pmf.push(Math.exp(logC + k * Math.log(p) + (n - k) * Math.log1p(-p)));
  }
  let lo = 0;
  for (let below = 0; lo < n && below + (pmf[lo] ?? 0) <= tail; lo++) below += pmf[lo] ?? 0;
  let hi = n;
  for (let above = 0; hi > 0 && above + (pmf[hi] ?? 0) <= tail; hi--) above += pmf[hi] ?? 0;
  return { lo, hi };
}
