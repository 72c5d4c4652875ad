// How many of a scoring run's steps carry gradient information for IGIA.
//
// PEFT starts LoRA's B at 0, so gA = 0 and S = gB·gA = 0 until B has moved, and B moves only at a step whose
// learning rate is above 0. A step s therefore adds to F only when some step before it had lr > 0 (the fixtures'
// run: step 0 has lr 0, so steps 0 and 1 add nothing). A run that starts from a trained adapter (B ≠ 0) gets
// information from every step.

import { lrAt } from '../nn/schedule';
import { scheduleOf, type ScoringSettings } from '../nn/run-settings';

/** Fewer informative steps than this, and the ranking rests on too few batches to trust: say so. */
export const MIN_GRADIENT_STEPS = 3;

/** Steps with gradient information, from the learning rate of each step (B = 0 at the start unless `startsNonZero`). */
export function gradientSteps(lrs: readonly number[], startsNonZero = false): number {
  if (startsNonZero) return lrs.length;
  const firstMoving = lrs.findIndex((lr) => lr > 0);
  return firstMoving < 0 ? 0 : lrs.length - firstMoving - 1;
}

/** The same from the settings, before the run (the schedule's lr at each step). */
export function plannedGradientSteps(s: Pick<ScoringSettings, 'lr' | 'warmupSteps' | 'schedule' | 'steps'>, startsNonZero = false): number {
  const schedule = scheduleOf(s);
  return gradientSteps(Array.from({ length: s.steps }, (_, step) => lrAt(schedule, step)), startsNonZero);
}

/** A warning when too few steps inform the scores, or null. */
export function gradientStepsWarning(informative: number, steps: number): string | null {
  if (informative >= MIN_GRADIENT_STEPS) return null;
  return (
    `only ${informative} of ${steps} scoring step${steps === 1 ? '' : 's'} carr${informative === 1 ? 'ies' : 'y'} gradient information ` +
    "(LoRA's B starts at 0 and moves only after a step with a learning rate above 0, so the steps up to and including the first such step add nothing to IGIA); " +
    `the layer ranking rests on ${informative === 0 ? 'no batch at all' : informative === 1 ? 'one batch' : `${informative} batches`}. ` +
    `Use more steps or fewer warmup steps (at least ${MIN_GRADIENT_STEPS} informative steps).`
  );
}
