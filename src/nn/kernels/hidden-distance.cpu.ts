// CPU reference of ./hidden-distance.ts: the per-position distance between two (B, T, C) states, summed over the
// positions the loss counts (t < T−1 and mask[b, t+1] == 1). Double accumulation.

import type { HiddenDistanceMeasure } from './hidden-distance';

/** Σ over counted positions of 1 − cos(a, b) or arccos(cos(a, b)) / π, and how many positions were counted. */
export function hiddenDistanceSum(a: ArrayLike<number>, b: ArrayLike<number>, mask: ArrayLike<number>, T: number, C: number, measure: HiddenDistanceMeasure): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (let row = 0; row < mask.length; row++) {
    if (row % T === T - 1 || mask[row + 1] !== 1) continue;
    let dot = 0, na = 0, nb = 0;
    for (let c = 0; c < C; c++) {
      const x = a[row * C + c], y = b[row * C + c];
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    const cos = Math.min(1, Math.max(-1, dot / Math.max(Math.sqrt(na) * Math.sqrt(nb), 1e-8)));
    sum += measure === 'angular' ? Math.acos(cos) / Math.PI : 1 - cos;
    count++;
  }
  return { sum, count };
}
