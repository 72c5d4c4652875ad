// The layer-importance methods by id (./method.ts is their interface), and what a scoring run must gather for a set
// of them.

import { GradPruneError } from '../../errors';
import { angular } from './angular';
import { blockInfluence } from './bi';
import { igia, igiaCode } from './igia';
import { last } from './last';
import { magnitude } from './magnitude';
import type { HiddenStatePair, ImportanceMethod, ImportanceMethodId } from './method';
import { taylor } from './taylor';

export type * from './method';
export { angularScores } from './angular';
export { lastLayersRemoved } from './last';
export { frozenWeightSaliences, layerTaylorScores, planSaliencePasses, salienceMemoryLine, salienceScorer, type SalienceOptions, type SalienceResult, type TaylorImportanceKind } from './taylor';

export const IMPORTANCE_METHODS: ReadonlyMap<ImportanceMethodId, ImportanceMethod> = new Map(
  [igia, igiaCode, blockInfluence, angular, taylor, magnitude, last].map((m) => [m.id, m]),
);

/** The method of an id (e.g. from --methods), or a GradPruneError listing the ones there are. */
export function importanceMethod(id: string): ImportanceMethod {
  const m = IMPORTANCE_METHODS.get(id as ImportanceMethodId);
  if (!m) {
    throw new GradPruneError('input', `There is no layer-importance method '${id}'.`, { subject: 'methods', hint: `Choose from: ${[...IMPORTANCE_METHODS.keys()].join(', ')}.` });
  }
  return m;
}

/** Every hidden-state pair the methods need for N = prune, each once (pass as runScoring's hiddenStates). */
export function hiddenStatePairsFor(methods: readonly ImportanceMethod[], numLayers: number, prune: number): HiddenStatePair[] {
  const seen = new Map<string, HiddenStatePair>();
  for (const m of methods) for (const p of m.hiddenStatePairs?.(numLayers, prune) ?? []) seen.set(`${p.from}:${p.to}:${p.measure}`, p);
  return [...seen.values()];
}
