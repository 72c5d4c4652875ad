// Angular distance (Gromov et al., "The Unreasonable Ineffectiveness of the Deeper Layers", arXiv 2403.17887;
// PruneMe): for a block of n layers ℓ .. ℓ+n−1, d(ℓ) = arccos(cos(h_ℓ, h_ℓ+n)) / π per target position, averaged;
// the block with the smallest d is removed. Blocks start at layer 1 or later (makePlan never removes layer 0), so
// 1 ≤ n ≤ L − 1. Ties: the deeper block (makePlan's own tie rule prunes higher layers first).
// As per-layer scores (higher = keep): each layer gets the smallest d of the candidate blocks that contain it, and
// layers outside the chosen block are lifted above its d where they tie with it, so that makePlan with N = n removes
// exactly the chosen block. Layer 0, in no candidate block, scores 1 (the largest distance there is).

import { checkPruneCount, scoringRunOf } from './common';
import { pairMeans } from './hidden-state';
import type { HiddenStatePair, ImportanceMethod, LayerBlock } from './method';

/** The pairs (ℓ, ℓ + n), ℓ = 1 .. L − n, of every candidate block of n layers. */
export const angularPairs = (numLayers: number, n: number): HiddenStatePair[] =>
  Array.from({ length: Math.max(0, numLayers - n) }, (_, i) => ({ from: i + 1, to: i + 1 + n, measure: 'angular' }));

/** Per-layer scores and the chosen block from the distances d[i] of the blocks starting at layer i + 1. */
export function angularScores(numLayers: number, n: number, distances: readonly number[]): { layerScores: number[]; block: LayerBlock } {
  let best = 0;
  distances.forEach((d, i) => {
    if (d <= distances[best]) best = i; // ties: the deeper block
  });
  const block: LayerBlock = { start: best + 1, size: n, distance: distances[best] };
  const layerScores = Array.from({ length: numLayers }, (_, l) => {
    if (l === 0) return 1;
    if (l >= block.start && l < block.start + n) return block.distance;
    let s = Infinity;
    for (let start = Math.max(1, l - n + 1); start <= Math.min(l, numLayers - n); start++) s = Math.min(s, distances[start - 1]);
    return s > block.distance ? s : block.distance + 1e-9; // a tie with the chosen block: kept
  });
  return { layerScores, block };
}

export const angular: ImportanceMethod = {
  id: 'angular',
  title: 'Angular distance (Gromov et al.)',
  reference: 'Gromov et al., arXiv 2403.17887 (PruneMe)',
  source: 'scoring',
  hiddenStatePairs: (numLayers, prune) => angularPairs(numLayers, prune),
  async compute(ctx) {
    const L = ctx.model.config.numLayers;
    checkPruneCount('angular', ctx.prune, L, 1, L - 1, 'a block of layers starting after layer 0, which is kept');
    const run = scoringRunOf('angular', ctx);
    const { means, cost } = pairMeans('angular', run, angularPairs(L, ctx.prune));
    return { method: 'angular', ...angularScores(L, ctx.prune, means), cost };
  },
};
