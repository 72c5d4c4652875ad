// What several importance methods share: the checks on N and on the scoring run they read.

import { GradPruneError } from '../../errors';
import type { ImportanceContext, ImportanceMethodId, ScoringRun } from './method';

/** N must be a whole number of layers in [min, max]; the message names the method and says what is allowed. */
export function checkPruneCount(method: ImportanceMethodId, n: number, numLayers: number, min: number, max: number, why: string): void {
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new GradPruneError('input', `The '${method}' method cannot remove ${n} of ${numLayers} layers: it removes between ${min} and ${max} (${why}).`, {
      subject: 'layers',
      hint: `Remove between ${min} and ${max} layers (--layers in the CLI).`,
    });
  }
}

/** The scoring run a 'scoring' method reads; a clear error when the caller has none. */
export function scoringRunOf(method: ImportanceMethodId, ctx: ImportanceContext): ScoringRun {
  if (!ctx.scoring) {
    throw new GradPruneError('input', `The '${method}' method reads the scoring run's statistics, and no scoring run was given.`, {
      subject: method,
      hint: 'Run the scoring first (runScoring) and pass its result.',
    });
  }
  return ctx.scoring;
}
