/** Krippendorff's alpha against published and hand-computed values. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { krippendorffAlpha } from '../src/review/agreement.ts';

/**
 * K. Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011), section C: 4 observers,
 * 12 units, values 1–5, missing data (null); unit 12 has one value and is unpairable. The paper gives
 * alpha nominal 0.743, ordinal 0.815, interval 0.849 (and n = 40 pairable values).
 */
const A = [1, 2, 3, 3, 2, 1, 4, 1, 2, null, null, null];
const B = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, null, 3];
const C = [null, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, null];
const D = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, null];
const units = A.map((_, u) => [A[u]!, B[u]!, C[u]!, D[u]!]);

test('the 2011 paper example: nominal 0.743, ordinal 0.815, interval 0.849', () => {
  const nominal = krippendorffAlpha(units, 'nominal');
  assert.equal(nominal.values, 40);
  assert.equal(nominal.units, 11);
  assert.equal(nominal.alpha.toFixed(3), '0.743');
  assert.equal(krippendorffAlpha(units, 'ordinal').alpha.toFixed(3), '0.815');
  assert.equal(krippendorffAlpha(units, 'interval').alpha.toFixed(3), '0.849');
});

test('a hand-computed two-rater case (nominal)', () => {
  // Units: (1,1) (1,2) (2,2). Coincidences: o11 = 2, o12 = o21 = 1, o22 = 2; n1 = n2 = 3, n = 6.
  // D_o = (o12 + o21)/n = 2/6; D_e = (n1 n2 + n2 n1)/(n(n−1)) = 18/30; alpha = 1 − (1/3)/(3/5) = 4/9.
  assert.ok(Math.abs(krippendorffAlpha([[1, 1], [1, 2], [2, 2]], 'nominal').alpha - 4 / 9) < 1e-12);
});

test('a hand-computed ordinal case: the distance counts the ranks in between', () => {
  // Units (1,3) (3,3) (1,1) (2,2): n1 = 3, n2 = 2, n3 = 3, n = 8. o13 = o31 = 1, o11 = 2, o33 = 2, o22 = 2.
  // δ²(1,3) = (n1 + n2 + n3 − (n1 + n3)/2)² = (8 − 3)² = 25. D_o = 2·25/8.
  // D_e = [2·n1 n3·25 + 2·n1 n2·δ²(1,2) + 2·n2 n3·δ²(2,3)]/(8·7), δ²(1,2) = (5 − 2.5)² = 6.25 = δ²(2,3)
  //     = (450 + 75 + 75)/56 = 600/56. alpha = 1 − (50/8)/(600/56) = 1 − 350/600 = 5/12.
  assert.ok(Math.abs(krippendorffAlpha([[1, 3], [3, 3], [1, 1], [2, 2]], 'ordinal').alpha - 5 / 12) < 1e-12);
});

test('perfect agreement is 1; no variation or no pairs is undefined (NaN)', () => {
  assert.equal(krippendorffAlpha([[1, 1], [4, 4, 4], [2, null, 2]], 'ordinal').alpha, 1);
  assert.ok(Number.isNaN(krippendorffAlpha([[5, 5], [5, 5]], 'ordinal').alpha));
  assert.ok(Number.isNaN(krippendorffAlpha([[5], [3]], 'ordinal').alpha));
  assert.equal(krippendorffAlpha([[5], [3]], 'ordinal').units, 0);
});
