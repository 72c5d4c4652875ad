// Block Influence (ShortGPT, arXiv 2403.03853): BI_ℓ = 1 − cos(h_ℓ, h_ℓ+1), layer ℓ's input and output hidden states,
// averaged over the target positions of the scoring batches (gathered in the scoring run's own forward passes).
// A layer that changes its input little matters little: higher BI = keep.

import { scoringRunOf } from './common';
import { pairMeans } from './hidden-state';
import type { HiddenStatePair, ImportanceMethod } from './method';

const biPairs = (numLayers: number): HiddenStatePair[] => Array.from({ length: numLayers }, (_, l) => ({ from: l, to: l + 1, measure: 'cosine' }));

export const blockInfluence: ImportanceMethod = {
  id: 'bi',
  title: 'Block Influence (ShortGPT)',
  reference: 'ShortGPT, arXiv 2403.03853',
  source: 'scoring',
  hiddenStatePairs: (numLayers) => biPairs(numLayers),
  async compute(ctx) {
    const run = scoringRunOf('bi', ctx);
    const { means, cost } = pairMeans('bi', run, biPairs(ctx.model.config.numLayers));
    return { method: 'bi', layerScores: means, cost };
  },
};
