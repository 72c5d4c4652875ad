// The studio's starting choices. The run settings are the engine's own defaults (the paper's, from the leaf module
// nn/run-settings.ts, which imports no GPU code); the rest are choices only the page makes.

import { DEFAULT_RECOVERY_SETTINGS, resolveScoringSettings, type ScoringSettings } from '../nn/run-settings';
import type { DatasetOptions, EvaluateOptions, PlanChoice, RecoverSettings } from '../worker/protocol';

/** The paper's scoring run, warmup filled in as the engine fills it. */
export const DEFAULT_SETTINGS: ScoringSettings = resolveScoringSettings();

/** The paper's fine-tuning, its length given in steps (a run can be stopped at any step and still gives its before / after table). */
export const DEFAULT_RECOVER_SETTINGS: RecoverSettings = {
  by: 'steps',
  steps: DEFAULT_RECOVERY_SETTINGS.steps,
  epochs: 1, // shown when the length is switched to epochs
  rank: DEFAULT_RECOVERY_SETTINGS.rank,
  alpha: DEFAULT_RECOVERY_SETTINGS.alpha,
  lr: DEFAULT_RECOVERY_SETTINGS.lr,
  batchSize: DEFAULT_RECOVERY_SETTINGS.batchSize,
  seqLen: DEFAULT_RECOVERY_SETTINGS.seqLen,
  schedule: DEFAULT_RECOVERY_SETTINGS.schedule,
};

export const DEFAULT_DATASET_OPTIONS: Omit<DatasetOptions, 'maxSeqLen'> = { heldOut: 0.1, seed: 0 };

export const DEFAULT_PLAN_CHOICE: PlanChoice = { prune: 0, merge: 0, keepFraction: 0.2, protectLast: false, rankedBy: 'paper' };

export const DEFAULT_EVALUATE_OPTIONS: EvaluateOptions = { maxExamples: 64, generations: 3, maxNewTokens: 24, exactMatch: false };
