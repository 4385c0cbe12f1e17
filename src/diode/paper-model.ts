/**
 * The paper's evaluation (§IV) from its equations, for `tacmesh diode model`.
 *
 * Transfer time of A Mbit over TCP link 1 (X Mbit/s, client → sender), the one-way link
 * (Z) and TCP link 2 (Y, receiver → destination):
 *   store-and-forward (the receiver stores everything, then delivers): A/X + A/Z + A/Y
 *   RED (streaming, the client throttled to B):                         A/min(X,B) + setup
 * with A = 500, Y = 10, Z = 1000, setup 0.5 s (Fig. 7-8, Table 4-5). A hybrid picks the
 * faster per session.
 *
 * Loss: PER = 1 − (1 − b)^(8p) (3); with n extra copies fPER = PER^(n+1) (4) (Fig. 9).
 */

export interface TransferParams {
  /** Data size, Mbit. */
  a: number;
  /** TCP link 1 (client to sender), Mbit/s. */
  x: number;
  /** TCP link 2 (receiver to destination), Mbit/s. */
  y: number;
  /** The one-way link, Mbit/s. */
  z: number;
  /** RED's throughput limit for the session (Th2), Mbit/s. */
  b: number;
  /** Time for the receiver to set up the destination connection, s. */
  setup: number;
}

export const PAPER: Omit<TransferParams, 'x' | 'b'> = { a: 500, y: 10, z: 1000, setup: 0.5 };

export function storeAndForwardTime(p: TransferParams): number {
  return p.a / p.x + p.a / p.z + p.a / p.y;
}

export function redTime(p: TransferParams): number {
  return p.a / Math.min(p.x, p.b) + p.setup;
}

/** How much shorter RED's transfer is than store-and-forward, as a fraction (negative: longer). */
export function improvement(p: TransferParams): number {
  const sf = storeAndForwardTime(p);
  return (sf - redTime(p)) / sf;
}

/** Table 4: RED is faster except when X > Y and B < Y (and then only when B is far from X). */
export function hybridChoice(p: TransferParams): 'RED' | 'store-and-forward' {
  return redTime(p) <= storeAndForwardTime(p) ? 'RED' : 'store-and-forward';
}

/** Eq. (3): packet error rate of a p-byte packet at bit error rate b. */
export function per(b: number, p: number): number {
  return -Math.expm1(8 * p * Math.log1p(-b));
}

/** Eq. (4): final packet error rate with n extra copies. */
export function fper(b: number, p: number, n: number): number {
  return per(b, p) ** (n + 1);
}

const pct = (f: number) => `${(f * 100).toFixed(1)}%`;
const pad = (s: string | number, n: number) => String(s).padStart(n);

/** The paper's figures and tables as text. */
export function modelReport(): string {
  const out: string[] = [];
  const xs = Array.from({ length: 20 }, (_, i) => i + 1);
  const bs = [10, 8, 6];
  out.push(
    `Transfer time (s), A=${PAPER.a} Mbit, Y=${PAPER.y}, Z=${PAPER.z} Mbit/s, setup ${PAPER.setup} s (Fig. 7)`,
    `${pad('X', 3)} ${pad('store&fwd', 10)} ${bs.map((b) => pad(`RED B=${b}`, 10)).join(' ')}`,
  );
  for (const x of xs) {
    const sf = storeAndForwardTime({ ...PAPER, x, b: 10 });
    out.push(
      `${pad(x, 3)} ${pad(sf.toFixed(1), 10)} ${bs.map((b) => pad(redTime({ ...PAPER, x, b }).toFixed(1), 10)).join(' ')}`,
    );
  }
  out.push('', 'RED vs store-and-forward: transfer time saved (Fig. 8); hybrid picks the faster (Table 5)');
  out.push(`${pad('X', 3)} ${bs.map((b) => pad(`B=${b}`, 8)).join(' ')}   hybrid B=10/8/6`);
  for (const x of xs) {
    const cells = bs.map((b) => pad(pct(improvement({ ...PAPER, x, b })), 8)).join(' ');
    const choice = bs.map((b) => (hybridChoice({ ...PAPER, x, b }) === 'RED' ? 'RED' : 'S&F')).join('/');
    out.push(`${pad(x, 3)} ${cells}   ${choice}`);
  }
  const range = xs.map((x) => improvement({ ...PAPER, x, b: 10 }));
  out.push(
    '',
    `B=10: ${pct(Math.min(...range))} to ${pct(Math.max(...range))} shorter (paper: 9-50 %)`,
    `B=8: X=1 ${pct(improvement({ ...PAPER, x: 1, b: 8 }))}, X=6 ${pct(improvement({ ...PAPER, x: 6, b: 8 }))} (paper: 9 %, 37 %)`,
    `B=6: X=12 ${pct(improvement({ ...PAPER, x: 12, b: 6 }))}, X=20 ${pct(improvement({ ...PAPER, x: 20, b: 6 }))} (paper: about 10 %, -11 %)`,
    'Table 4: RED is faster except when X > Y and B < Y',
  );
  const b = 1e-6;
  const ns = [0, 1, 2, 3];
  out.push(
    '',
    `Final packet error rate fPER, b=${b} (Fig. 9)`,
    `${pad('p', 5)} ${ns.map((n) => pad(`n=${n}`, 10)).join(' ')}`,
  );
  for (let p = 100; p <= 2000; p += 100) {
    out.push(`${pad(p, 5)} ${ns.map((n) => pad(fper(b, p, n).toExponential(2), 10)).join(' ')}`);
  }
  out.push(
    `p=500 n=0: ${fper(b, 500, 0).toFixed(3)}; p=2000 n=0: ${fper(b, 2000, 0).toFixed(3)} (paper: 0.004, 0.016)`,
    `p=1000: n=0 ${fper(b, 1000, 0).toFixed(3)}, n=3 ${fper(b, 1000, 3).toExponential(2)} (paper: 0.008, 4.03e-9)`,
  );
  return out.join('\n');
}

/** The counters a measured run leaves (stats files of `tacmesh diode send` / `recv`). */
export interface MeasuredRun {
  sender?: { link: { frames: number; copiesSent: number; datagramsSent: number } };
  receiver: {
    link: { frames: number; lostFrames: number; health: { datagramLoss: number | null } };
    tcp?: { deliveredBytes: number };
  };
}

/** The model's counterpart from a run: measured datagram loss → predicted and measured frame loss. */
export function measuredReport(run: MeasuredRun): string {
  const loss = run.receiver.link.health.datagramLoss;
  const r = run.receiver.link;
  const measured = r.lostFrames / Math.max(1, r.frames + r.lostFrames);
  const out = [
    'Measured on the emulated link',
    `datagram loss (from heartbeats): ${loss === null ? 'unknown' : pct(loss)}`,
    `frames lost in every copy: ${r.lostFrames} of ${r.frames + r.lostFrames} (${measured.toExponential(2)})`,
  ];
  const s = run.sender?.link;
  if (s && loss !== null && s.frames > 0) {
    const n = s.copiesSent / s.frames;
    out.push(
      `copies per frame (mean): ${n.toFixed(2)}`,
      `eq. (4) with the measured loss as PER and n=${n.toFixed(2)}: fPER = ${(loss ** (n + 1)).toExponential(2)}`,
    );
  }
  return out.join('\n');
}
