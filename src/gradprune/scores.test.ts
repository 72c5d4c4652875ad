import { describe, expect, it } from 'vitest';
import { kendallTau, rankLayers } from './scores';

describe('kendallTau', () => {
  it('matches scipy.stats.kendalltau (τ-b) on its documented example with ties', () => {
    // scipy docs: x = [12, 2, 1, 12, 2], y = [1, 4, 7, 1, 0] → statistic -0.47140452079103173
    expect(kendallTau([12, 2, 1, 12, 2], [1, 4, 7, 1, 0])).toBeCloseTo(-0.47140452079103173, 12);
  });
  it('is 1 for the same order, −1 for the reverse, NaN for a constant vector', () => {
    expect(kendallTau([1, 2, 3, 4], [10, 20, 30, 40])).toBe(1);
    expect(kendallTau([1, 2, 3, 4], [4, 3, 2, 1])).toBe(-1);
    expect(kendallTau([1, 1, 1], [1, 2, 3])).toBeNaN();
  });
  it('counts one swapped pair out of six', () => {
    expect(kendallTau([1, 2, 3, 4], [2, 1, 3, 4])).toBeCloseTo(4 / 6, 12);
  });
});

describe('rankLayers', () => {
  it('orders layers by descending score, ties by index', () => {
    expect(rankLayers([0.1, 0.5, 0.5, 0.2])).toEqual([1, 2, 3, 0]);
  });
});
