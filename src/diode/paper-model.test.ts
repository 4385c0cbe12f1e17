import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fper, hybridChoice, improvement, PAPER, per, redTime, storeAndForwardTime } from './paper-model.js';

const at = (x: number, b: number) => improvement({ ...PAPER, x, b });
const near = (got: number, want: number, tol: number, what: string) =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: ${got}, paper ${want}`);

test("transfer times reproduce the paper's Fig. 7-8 and Table 4", () => {
  assert.equal(storeAndForwardTime({ ...PAPER, x: 10, b: 10 }), 100.5);
  assert.equal(redTime({ ...PAPER, x: 10, b: 10 }), 50.5);
  const b10 = Array.from({ length: 20 }, (_, i) => at(i + 1, 10));
  near(Math.min(...b10), 0.09, 0.005, 'B=10 least');
  near(Math.max(...b10), 0.5, 0.005, 'B=10 most');
  near(at(1, 8), 0.09, 0.005, 'B=8 X=1');
  near(at(6, 8), 0.37, 0.005, 'B=8 X=6');
  near(at(12, 6), 0.1, 0.011, 'B=6 X=12');
  near(at(20, 6), -0.11, 0.005, 'B=6 X=20');
  // Table 4: RED loses only when X > Y and B < Y; the hybrid then picks store-and-forward.
  assert.equal(hybridChoice({ ...PAPER, x: 20, b: 6 }), 'store-and-forward');
  for (let x = 1; x <= 10; x++)
    for (const b of [6, 8, 10]) assert.equal(hybridChoice({ ...PAPER, x, b }), 'RED');
});

test("fPER reproduces the paper's Fig. 9", () => {
  near(per(1e-6, 1000), 0.008, 0.0005, 'p=1000 n=0');
  near(fper(1e-6, 500, 0), 0.004, 0.0005, 'p=500 n=0');
  near(fper(1e-6, 2000, 0), 0.016, 0.0005, 'p=2000 n=0');
  near(fper(1e-6, 1000, 3), 4.03e-9, 0.005e-9, 'p=1000 n=3');
});
