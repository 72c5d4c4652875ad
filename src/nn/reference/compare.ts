// Error measures used by the tests against the fixtures (the README's tolerances are stated in these terms).

/** ‖a − b‖₂ / ‖b‖₂ (‖a − b‖₂ when b is all zeros). */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relL2: lengths differ (${a.length} vs ${b.length})`);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] * b[i];
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** max |a − b| / (1 + |b|): the logits criterion (≤ 1e-4). */
export function maxScaledAbsError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxScaledAbsError: lengths differ (${a.length} vs ${b.length})`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i]));
    if (!(e <= worst)) worst = e; // NaN propagates as the worst
  }
  return worst;
}

export const relError = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

/** Indices sorted by value, ascending (ties by index): for comparing layer rankings. */
export const ranking = (v: ArrayLike<number>): number[] =>
  Array.from({ length: v.length }, (_, i) => i).sort((i, j) => v[i] - v[j] || i - j);

/**
 * Elements farther than `tol` from the reference (NaN counts). The fixtures allow merge masks to flip where F sits
 * within float rounding of the top-k threshold: ≤ 0.1% of a merged module's elements.
 */
export function countMismatches(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5): number {
  let n = 0;
  for (let i = 0; i < want.length; i++) if (!(Math.abs(got[i] - want[i]) <= tol)) n++;
  return n;
}

/** The fixtures README's bound on flipped merge-mask elements, as a fraction of a module. */
export const MAX_FLIPPED_FRACTION = 0.001;
