/**
 * The diode's cheap FEC code for links that lose little: LDPC-staircase (after RFC 5170) with
 * a few dense rows. A block of K source symbols gets R parities, R = Rs + D:
 *
 *   Rs staircase parities: each source is XORed into N1 = 5 of the Rs rows (fewer when Rs < 5),
 *     row degrees kept even (RFC 5170 §6.2's method, Park–Miller minimal standard, seed 1), and
 *     p_0 = the XOR of row 0's sources,  p_i = p_(i-1) XOR the sources of row i;
 *   D dense parities (DENSE = 8, or R / 2 when R is small): parity m is the XOR of the sources
 *     whose id hashes with bit m set — about half of them.
 *
 * Encoding costs N1 + D/2 (about 9) symbol XORs per source, a sixth to a ninth of RaptorQ's CPU
 * (bench/diode/fec-cpu.ts). Decoding is maximum likelihood: the received symbols are put into
 * the equations (staircase row i: its sources, p_i and p_(i-1); dense row m: its sources and
 * d_m — all XOR to zero), equations left with one unknown solve it and are substituted in turn
 * (peeling), and Gaussian elimination over GF(2) solves what peeling leaves, taking the dense
 * rows only if the staircase ones do not suffice (each costs K/2 XORs). The dense rows are
 * what a sparse code lacks at this rate (R a few % of K, or less): sources whose staircase
 * rows coincide, or small sets of them that XOR to nothing, cannot be told apart by the
 * staircase alone; half-density rows separate them, so the code fails about as a random
 * binary code does — with about 2^-h when h more symbols than unknowns arrived
 * (LDPC_DECODE_OVERHEAD sizes R; the measured rates are in docs/diode.md).
 *
 * Symbol ids: sources 0..K-1, staircase parities K..K+Rs-1, dense K+Rs..K+R-1. Symbols are
 * T bytes, T a multiple of 8, XORed 8 bytes at a time. Both ends build the matrix from K and R.
 */

/** Staircase rows per source column (RFC 5170's N1). */
export const N1 = 5;
/** Dense rows, when R allows. */
export const DENSE = 8;
export const MAX_LDPC_SYMBOLS = 4096;
export const MAX_LDPC_PARITY = 0xffff;

interface Matrix {
  k: number;
  r: number;
  /** Staircase rows, and rows per source. */
  rs: number;
  n1: number;
  /** Per source, its `n1` staircase rows. */
  rows: Uint32Array;
  /** Per staircase row, its sources (CSR: rowStart[i]..rowStart[i+1] in rowSources). */
  rowStart: Uint32Array;
  rowSources: Uint32Array;
  /** Dense rows, and per source the mask of those it is in. */
  d: number;
  dense: Uint32Array;
}

const cache = new Map<number, Matrix>();
const CACHE = 16;

/** Park–Miller minimal standard (16807 mod 2^31 − 1), seed 1. */
function generator(): (n: number) => number {
  let state = 1;
  return (n) => {
    state = (state * 16807) % 2147483647;
    return state % n;
  };
}

/** A source's dense rows: bits of a 32-bit mix of its id (MurmurHash3's finaliser). */
function denseMask(j: number, d: number): number {
  let h = Math.imul(j ^ 0x9e3779b9, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return d >= 32 ? h >>> 0 : (h & ((1 << d) - 1)) >>> 0;
}

/** Dense rows for R parities: DENSE, or half of R when R is below twice that. */
export function denseRows(r: number): number {
  return r >= 2 * DENSE ? DENSE : Math.floor(r / 2);
}

function matrix(k: number, r: number): Matrix {
  const key = k * 0x10000 + r;
  const hit = cache.get(key);
  if (hit) return hit;
  const d = denseRows(r);
  const rs = r - d;
  const n1 = Math.min(N1, rs);
  const rand = generator();
  // Row degrees even: every row is in the pool as often as k * n1 / rs allows.
  const pool = new Uint32Array(k * n1);
  for (let t = 0; t < pool.length; t++) pool[t] = t % rs;
  let left = pool.length;
  const rows = new Uint32Array(k * n1);
  // No two sources with the same staircase rows while there are rows enough to tell them apart.
  const seen = new Set<string>();
  const distinct = combinations(rs, n1) >= 4 * k;
  for (let j = 0; j < k; j++) {
    for (let attempt = 0; ; attempt++) {
      for (let h = 0; h < n1; h++) {
        const taken = (row: number) => {
          for (let g = 0; g < h; g++) if (rows[j * n1 + g] === row) return true;
          return false;
        };
        let pick = -1;
        // A random pool entry not yet in this column; after a few tries any row not in it.
        for (let tries = 0; tries < 16 && pick < 0 && left > 0; tries++) {
          const at = rand(left);
          if (!taken(pool[at]!)) {
            pick = pool[at]!;
            pool[at] = pool[--left]!;
          }
        }
        while (pick < 0) {
          const row = rand(rs);
          if (!taken(row)) pick = row;
        }
        rows[j * n1 + h] = pick;
      }
      if (!distinct) break;
      const key = [...rows.subarray(j * n1, (j + 1) * n1)].sort((a, b) => a - b).join(',');
      if (!seen.has(key) || attempt >= 32) {
        seen.add(key);
        break;
      }
      // Drawn again: the rows go back into the pool.
      for (let h = 0; h < n1; h++) pool[left++] = rows[j * n1 + h]!;
    }
  }
  const rowStart = new Uint32Array(rs + 1);
  for (const row of rows) rowStart[row + 1]!++;
  for (let i = 0; i < rs; i++) rowStart[i + 1]! += rowStart[i]!;
  const fill = rowStart.slice(0, rs);
  const rowSources = new Uint32Array(rows.length);
  for (let j = 0; j < k; j++) for (let h = 0; h < n1; h++) rowSources[fill[rows[j * n1 + h]!]!++] = j;
  const dense = new Uint32Array(k);
  for (let j = 0; j < k; j++) dense[j] = denseMask(j, d);
  const m = { k, r, rs, n1, rows, rowStart, rowSources, d, dense };
  if (cache.size >= CACHE) cache.delete(cache.keys().next().value!);
  cache.set(key, m);
  return m;
}

/** C(n, r), capped at 2^40 (enough to compare with block sizes). */
function combinations(n: number, r: number): number {
  let c = 1;
  for (let i = 0; i < r && c < 2 ** 40; i++) c = (c * (n - i)) / (i + 1);
  return c;
}

function check(k: number, r: number, t: number): void {
  if (!Number.isInteger(k) || k < 1 || k > MAX_LDPC_SYMBOLS)
    throw new RangeError(`LDPC block of ${k} symbols (1-${MAX_LDPC_SYMBOLS})`);
  if (!Number.isInteger(r) || r < 1 || r > MAX_LDPC_PARITY) throw new RangeError(`LDPC with ${r} parities`);
  if (t % 8 !== 0 || t <= 0) throw new RangeError(`symbol size ${t} is not a multiple of 8`);
}

/** A 64-bit view of `bytes` (copied when not 8-aligned). */
function words(bytes: Uint8Array): BigUint64Array {
  if (bytes.byteOffset % 8 === 0)
    return new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
  return new BigUint64Array(bytes.slice().buffer);
}

function xorInto(dst: BigUint64Array, d: number, src: BigUint64Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) dst[d + i]! ^= src[s + i]!;
}

/** The `r` parity symbols (r × t bytes) of the k = data.length / t sources in `data`. */
export function encodeParity(data: Uint8Array, t: number, r: number): Uint8Array {
  const k = data.length / t;
  check(k, r, t);
  const m = matrix(k, r);
  const w = t / 8;
  const out = new Uint8Array(r * t);
  const p = words(out);
  const s = words(data);
  for (let j = 0; j < k; j++) {
    for (let h = 0; h < m.n1; h++) xorInto(p, m.rows[j * m.n1 + h]! * w, s, j * w, w);
    for (let mask = m.dense[j]!, b = 0; mask !== 0; mask >>>= 1, b++)
      if (mask & 1) xorInto(p, (m.rs + b) * w, s, j * w, w);
  }
  for (let i = 1; i < m.rs; i++) xorInto(p, i * w, p, (i - 1) * w, w);
  return out;
}

/**
 * The missing sources of a block from the symbols that arrived (`esis[i]` is the id of symbol i
 * in `symbols`, t bytes each; any order). Returns the ids and the symbols (t bytes each) of
 * every source not given; undefined when the symbols given do not determine them (more are
 * needed). Ids beyond the block or given twice are an error (RangeError).
 */
export function decodeLdpc(
  k: number,
  r: number,
  t: number,
  esis: Uint32Array,
  symbols: Uint8Array,
): { esis: Uint32Array; symbols: Uint8Array } | undefined {
  check(k, r, t);
  if (symbols.length !== esis.length * t) throw new RangeError('symbols and ids differ in number');
  const m = matrix(k, r);
  const { rs, n1 } = m;
  const w = t / 8;
  const n = k + r;
  // Where each variable's value is: given (index + 1), solved (-(slot + 1)), or unknown (0).
  const at = new Int32Array(n);
  for (let i = 0; i < esis.length; i++) {
    const e = esis[i]!;
    if (e >= n) throw new RangeError(`symbol id ${e} is beyond the block (${n})`);
    if (at[e] !== 0) throw new RangeError(`symbol id ${e} given twice`);
    at[e] = i + 1;
  }
  const missing: number[] = [];
  for (let j = 0; j < k; j++) if (at[j] === 0) missing.push(j);
  if (missing.length === 0) return { esis: new Uint32Array(0), symbols: new Uint8Array(0) };
  // Unknowns that matter: sources and staircase parities (a dense parity only ever is in its own row).
  let unknowns = 0;
  for (let v = 0; v < k + rs; v++) if (at[v] === 0) unknowns++;
  const receivedDense: number[] = [];
  for (let b = 0; b < m.d; b++) if (at[k + rs + b] !== 0) receivedDense.push(b);
  if (unknowns > rs + receivedDense.length) return undefined;

  const given = words(symbols);
  const solved = new BigUint64Array(unknowns * w);
  let solvedCount = 0;
  const value = (v: number): [BigUint64Array, number] | undefined =>
    at[v]! > 0 ? [given, (at[v]! - 1) * w] : at[v]! < 0 ? [solved, (-at[v]! - 1) * w] : undefined;
  /** The staircase rows of source or staircase parity `v`. */
  const rowsOf = (v: number, f: (row: number) => void) => {
    if (v < k) for (let h = 0; h < n1; h++) f(m.rows[v * n1 + h]!);
    else {
      f(v - k);
      if (v - k + 1 < rs) f(v - k + 1);
    }
  };
  /** Calls f for each variable of staircase row `row`. */
  const eachInRow = (row: number, f: (v: number) => void) => {
    for (let e = m.rowStart[row]!; e < m.rowStart[row + 1]!; e++) f(m.rowSources[e]!);
    f(k + row);
    if (row > 0) f(k + row - 1);
  };

  // Per staircase row: how many unknowns, and the XOR of their ids (the last one's id at count 1).
  const count = new Int32Array(rs);
  const idXor = new Int32Array(rs);
  for (let v = 0; v < k + rs; v++)
    if (at[v] === 0)
      rowsOf(v, (row) => {
        count[row]!++;
        idXor[row]! ^= v;
      });
  // Right-hand sides of the rows with unknowns: the XOR of their known symbols.
  const rhs = new BigUint64Array(rs * w);
  for (let row = 0; row < rs; row++) {
    if (count[row] === 0) continue;
    eachInRow(row, (v) => {
      const x = value(v);
      if (x) xorInto(rhs, row * w, x[0], x[1], w);
    });
  }
  // Peeling: a row with one unknown gives it; it is substituted into its other rows.
  const queue: number[] = [];
  for (let row = 0; row < rs; row++) if (count[row] === 1) queue.push(row);
  while (queue.length > 0) {
    const row = queue.pop()!;
    if (count[row] !== 1) continue;
    const v = idXor[row]!;
    const slot = solvedCount++;
    solved.set(rhs.subarray(row * w, (row + 1) * w), slot * w);
    at[v] = -(slot + 1);
    rowsOf(v, (other) => {
      count[other]!--;
      idXor[other]! ^= v;
      if (other === row) return;
      xorInto(rhs, other * w, solved, slot * w, w);
      if (count[other] === 1) queue.push(other);
    });
  }
  if (solvedCount < unknowns && !eliminate()) return undefined;

  const outIds = new Uint32Array(missing);
  const out = new Uint8Array(outIds.length * t);
  const o = words(out);
  outIds.forEach((j, i) => {
    o.set(solved.subarray((-at[j]! - 1) * w, -at[j]! * w), i * w);
  });
  return { esis: outIds, symbols: out };

  /**
   * Gauss–Jordan over GF(2), a row at a time: the staircase rows peeling left, then dense rows
   * until every unknown has a pivot; false when even all of them do not determine the unknowns.
   */
  function eliminate(): boolean {
    const cols: number[] = [];
    for (let v = 0; v < k + rs; v++) if (at[v] === 0) cols.push(v);
    const colOf = new Map(cols.map((v, i) => [v, i]));
    const u = cols.length;
    const bw = Math.ceil(u / 32);
    const pivotRow = new Int32Array(u).fill(-1);
    const bits: Uint32Array[] = [];
    const sides: BigUint64Array[] = [];
    let pivots = 0;
    const insert = (b: Uint32Array, side: BigUint64Array) => {
      // Reduce by the pivots so far (rows kept fully reduced: zero in every other pivot column).
      for (let c = 0; c < u; c++) {
        const p = pivotRow[c]!;
        if (p < 0 || (b[c >>> 5]! & (1 << (c & 31))) === 0) continue;
        for (let x = 0; x < bw; x++) b[x]! ^= bits[p]![x]!;
        xorInto(side, 0, sides[p]!, 0, w);
      }
      let c = -1;
      for (let x = 0; x < bw && c < 0; x++) if (b[x] !== 0) c = x * 32 + (31 - Math.clz32(b[x]! & -b[x]!));
      if (c < 0 || c >= u) return;
      const me = bits.length;
      bits.push(b);
      sides.push(side);
      pivotRow[c] = me;
      pivots++;
      for (let q = 0; q < me; q++) {
        if ((bits[q]![c >>> 5]! & (1 << (c & 31))) === 0) continue;
        for (let x = 0; x < bw; x++) bits[q]![x]! ^= b[x]!;
        xorInto(sides[q]!, 0, side, 0, w);
      }
    };
    for (let row = 0; row < rs && pivots < u; row++) {
      if (count[row] === 0) continue;
      const b = new Uint32Array(bw);
      eachInRow(row, (v) => {
        const c = colOf.get(v);
        if (c !== undefined) b[c >>> 5]! ^= 1 << (c & 31);
      });
      insert(b, rhs.slice(row * w, (row + 1) * w));
    }
    for (const d of receivedDense) {
      if (pivots === u) break;
      const b = new Uint32Array(bw);
      const side = new BigUint64Array(w);
      const [src, off] = value(k + rs + d)!;
      xorInto(side, 0, src, off, w);
      for (let j = 0; j < k; j++) {
        if (((m.dense[j]! >>> d) & 1) === 0) continue;
        const c = colOf.get(j);
        if (c !== undefined) b[c >>> 5]! ^= 1 << (c & 31);
        else {
          const x = value(j)!;
          xorInto(side, 0, x[0], x[1], w);
        }
      }
      insert(b, side);
    }
    if (pivots < u) return false;
    cols.forEach((v, c) => {
      const slot = solvedCount++;
      solved.set(sides[pivotRow[c]!]!, slot * w);
      at[v] = -(slot + 1);
    });
    return true;
  }
}
