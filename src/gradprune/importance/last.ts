// The "reassessing" baseline (Reassessing Layer Pruning in LLMs, arXiv 2411.15558), data-free: remove the N layers
// just before the last one, L−1−N .. L−2. As scores: those N layers 0, every other layer 1, so that makePlan (which
// prunes the N lowest and never layer 0) removes exactly them.

import { checkPruneCount } from './common';
import type { ImportanceMethod } from './method';

/** The layers 'last' removes from an L-layer model for N (ascending). */
export const lastLayersRemoved = (numLayers: number, n: number): number[] => Array.from({ length: n }, (_, i) => numLayers - 1 - n + i);

export const last: ImportanceMethod = {
  id: 'last',
  title: 'Last layers (before the final one)',
  reference: 'Reassessing Layer Pruning in LLMs, arXiv 2411.15558',
  source: 'weights',
  async compute(ctx) {
    const L = ctx.model.config.numLayers;
    checkPruneCount('last', ctx.prune, L, 0, L - 2, 'layer 0 and the last layer are kept');
    const removed = new Set(lastLayersRemoved(L, ctx.prune));
    return {
      method: 'last',
      layerScores: Array.from({ length: L }, (_, l) => (removed.has(l) ? 0 : 1)),
      cost: { seconds: 0, gpuBytes: 0, hostBytes: 0, note: 'no data, no weights read' },
    };
  },
};
