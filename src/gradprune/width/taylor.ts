// LLM-Pruner's Taylor importances of the width units, from the task data: the frozen weights' saliences on the GPU
// (../importance/taylor.ts) over a few examples taken one at a time (its Fisher term is per example), as the
// LineScorer ./importance.ts reduces per unit.

import type { Gpu } from '../../gpu/device';
import type { ModelConfig } from '../../model/config';
import type { TensorStore } from '../../model/safetensors';
import { frozenWeightSaliences, salienceScorer, scoringBatches, type TaylorImportanceKind } from '../importance/taylor';
import type { ScoringData } from '../pipeline';
import type { LineScorer } from './importance';

/** LLM-Pruner's defaults: 10 examples of 64 tokens. */
export const TAYLOR_EXAMPLES = 10;
export const TAYLOR_SEQ = 64;

export interface TaylorScorer {
  scorer: LineScorer;
  examples: number;
  passes: number;
  seconds: number;
}

export async function taylorLineScorer(
  gpu: Gpu,
  model: { config: ModelConfig; store: TensorStore },
  data: ScoringData,
  kind: TaylorImportanceKind,
  opts: { examples?: number; seqLen?: number; seed?: number } = {},
): Promise<TaylorScorer> {
  const seqLen = opts.seqLen ?? TAYLOR_SEQ;
  const batches = scoringBatches(data, opts.examples ?? TAYLOR_EXAMPLES, { batchSize: 1, seed: opts.seed ?? 0, shuffle: true });
  const r = await frozenWeightSaliences(gpu, model, { batches, batchSize: 1, seqLen, second: kind !== 'param_first' });
  return { scorer: salienceScorer(r, kind), examples: batches.length, passes: r.passes.length, seconds: r.seconds };
}
