// What Block Influence and angular distance share: reading their pairs' means out of the scoring run's
// hidden-state statistics (nn/hidden-stats.ts), and their share of the collector's cost.

import { GradPruneError } from '../../errors';
import type { HiddenStatePair, HiddenStateStats, ImportanceCost, ImportanceMethodId, ScoringRun } from './method';

/** The means of `pairs`, in their order, from the run's statistics; a clear error when the run did not gather them. */
export function pairMeans(method: ImportanceMethodId, run: ScoringRun, pairs: readonly HiddenStatePair[]): { means: number[]; cost: ImportanceCost } {
  const stats: HiddenStateStats | undefined = run.hiddenStates;
  const hint = "Score again asking for the method's hidden-state pairs (runScoring's hiddenStates: hiddenStatePairsFor(methods, L, N)).";
  if (!stats) throw new GradPruneError('input', `The '${method}' method reads hidden-state statistics, and the scoring run gathered none.`, { subject: method, hint });
  const key = (p: HiddenStatePair) => `${p.from}:${p.to}:${p.measure}`;
  const index = new Map(stats.pairs.map((p, i) => [key(p), i]));
  const means = pairs.map((p) => {
    const i = index.get(key(p));
    if (i === undefined) {
      throw new GradPruneError('input', `The '${method}' method needs the ${p.measure} distance between hidden states ${p.from} and ${p.to}, which the scoring run did not gather.`, { subject: method, hint });
    }
    return stats.mean[i];
  });
  const share = pairs.length / stats.pairs.length;
  return {
    means,
    cost: {
      seconds: share * stats.secondsPerPass * stats.passes,
      gpuBytes: Math.round(share * stats.gpuBytes),
      hostBytes: 0,
      note: `inside the scoring run's ${stats.passes} forward passes: ${pairs.length} of the ${stats.pairs.length} hidden-state pairs gathered (${stats.tokens} target positions); time measured by one standalone submit`,
    },
  };
}
