// The studio's layer-importance methods beside GradPruner's IGIA (../../gradprune/importance): what the scoring run
// gathers for them, their rankings once it has finished, and the scores a plan ranked by one of them uses.
// N (the layers a plan removes) is not known while scoring, so the run gathers Block Influence's pairs (ℓ, ℓ+1) and
// angular distance's pairs for every block size n = 1 .. angularMaxBlock(L) = ⌈L/4⌉ (the "reassessing" paper's 25%):
// Σ_{n ≤ K} (L − n) pairs, each one cosine of two hidden states per target position per pass. Angular for a larger
// N is not available (its column says so). Taylor needs a gradient pass of its own and stays with the CLI's compare.

import { GradPruneError } from '../../errors';
import { hiddenStatePairsFor, importanceMethod, type HiddenStatePair, type ImportanceMethodId, type ScoringRun } from '../../gradprune/importance';
import type { ModelConfig } from '../../model/config';
import type { TensorStore } from '../../model/safetensors';
import type { MethodRanking, PlanRankedBy } from '../protocol';

type Model = { config: ModelConfig; store: TensorStore };

/** The studio's methods, in table order, and how a PlanChoice names each. */
export const STUDIO_METHODS: readonly { method: ImportanceMethodId; rankedBy: PlanRankedBy }[] = [
  { method: 'igia', rankedBy: 'paper' },
  { method: 'igia-code', rankedBy: 'code' },
  { method: 'bi', rankedBy: 'bi' },
  { method: 'angular', rankedBy: 'angular' },
  { method: 'magnitude', rankedBy: 'magnitude' },
  { method: 'last', rankedBy: 'last' },
];

/** The largest block angular distance is gathered for: ⌈L/4⌉, at least 1, at most L − 1. */
export const angularMaxBlock = (numLayers: number): number => Math.max(1, Math.min(numLayers - 1, Math.ceil(numLayers / 4)));

/** The hidden-state pairs a studio scoring run gathers: BI's, and angular's for every n up to angularMaxBlock. */
export function studioHiddenStatePairs(numLayers: number): HiddenStatePair[] {
  const methods = [importanceMethod('bi'), importanceMethod('angular')];
  const seen = new Map<string, HiddenStatePair>();
  for (let n = 1; n <= angularMaxBlock(numLayers); n++) {
    for (const p of hiddenStatePairsFor(methods, numLayers, n)) seen.set(`${p.from}:${p.to}:${p.measure}`, p);
  }
  return [...seen.values()];
}

/** The N a method's scores can be computed for (null: any N, the scores do not depend on it). */
function prunesOf(method: ImportanceMethodId, numLayers: number): number[] | null {
  if (method === 'last') return Array.from({ length: Math.max(0, numLayers - 1) }, (_, n) => n); // 0 .. L − 2
  if (method === 'angular') return Array.from({ length: angularMaxBlock(numLayers) }, (_, i) => i + 1);
  return null;
}

/** Every studio method's ranking from a finished scoring run (angular and BI only when it gathered their pairs). */
export async function methodRankings(model: Model, scoring: ScoringRun, signal?: AbortSignal): Promise<MethodRanking[]> {
  const L = model.config.numLayers;
  const rankings: MethodRanking[] = [];
  for (const { method, rankedBy } of STUDIO_METHODS) {
    const m = importanceMethod(method);
    if (m.hiddenStatePairs && !scoring.hiddenStates) continue; // a run resumed from a snapshot taken without them
    const base = { method, rankedBy, title: m.title, reference: m.reference };
    const prunes = prunesOf(method, L);
    if (!prunes) {
      const r = await m.compute({ model, prune: 0, scoring, signal });
      rankings.push({ ...base, layerScores: r.layerScores, cost: r.cost });
      continue;
    }
    const byPrune: NonNullable<MethodRanking['byPrune']> = [];
    let cost = null;
    for (const prune of prunes) {
      const r = await m.compute({ model, prune, scoring, signal });
      byPrune.push({ prune, layerScores: r.layerScores, ...(r.block ? { block: r.block } : {}) });
      cost ??= r.cost;
    }
    if (cost) rankings.push({ ...base, byPrune, cost });
  }
  return rankings;
}

/** The method a PlanChoice.rankedBy names. */
export const methodOfRankedBy = (rankedBy: PlanRankedBy): ImportanceMethodId => STUDIO_METHODS.find((m) => m.rankedBy === rankedBy)?.method ?? 'igia';

/** The layer scores a plan ranked by a non-IGIA method uses for N = prune (the method's own compute). */
export async function rankedScoresFor(model: Model, scoring: ScoringRun, rankedBy: PlanRankedBy, prune: number): Promise<number[]> {
  const method = methodOfRankedBy(rankedBy);
  const m = importanceMethod(method);
  if (m.hiddenStatePairs && !scoring.hiddenStates) {
    throw new GradPruneError('input', `The scoring run gathered no hidden states, which the '${method}' ranking reads.`, { subject: 'rankedBy', hint: 'Score again, or rank by another method.' });
  }
  if (method === 'angular' && prune > angularMaxBlock(model.config.numLayers)) {
    const k = angularMaxBlock(model.config.numLayers);
    throw new GradPruneError('input', `Angular distance was gathered for blocks of up to ${k} layers; this plan removes ${prune}.`, { subject: 'rankedBy', hint: `Remove at most ${k} layers, or rank by another method.` });
  }
  return (await m.compute({ model, prune, scoring })).layerScores;
}
