// Width pruning in the LLM-Pruner style (issue 15): GQA dependency groups (./groups), unit importance (./importance),
// the uniform-width plan (./plan), the sliced checkpoint (./export). `planWidthPrune` ties the first three together.

import type { ExportSource } from '../../export/checkpoint';
import { lineScorerFor, unitScores, type ImportanceOptions, type LayerUnitScores } from './importance';
import { makeWidthPlan, resolveWidthCounts, type WidthPlan, type WidthTarget } from './plan';

export { exportWidthPruned, exportWidthPrunedTo, widthPrunedView } from './export';
export type { WidthPlan, WidthTarget } from './plan';
export type { WidthRunInfo } from './recipe';

/** Score every unit of every layer (one weight read at a time), then choose what each layer keeps. */
export async function planWidthPrune(source: Pick<ExportSource, 'config' | 'store' | 'dtype'>, target: WidthTarget, importance: ImportanceOptions): Promise<{ plan: WidthPlan; scores: LayerUnitScores[] }> {
  // The counts are checked before any weight is read: a bad --heads or --ratio is answered at once.
  resolveWidthCounts(source.config, target);
  lineScorerFor(source.config, source.store, importance);
  const scores = await unitScores(source.config, source.store, importance);
  return { plan: makeWidthPlan(source.config, scores, target, source.dtype), scores };
}

