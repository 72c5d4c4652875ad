// The studio's starting choices. The scoring settings are the paper's (they equal the engine's
// DEFAULT_SCORING_SETTINGS, checked by defaults.test.ts; the page does not import the GPU engine to read them).

import type { ScoringSettings } from '../gradprune/pipeline';
import type { DatasetOptions, EvaluateOptions, PlanChoice } from '../worker/protocol';

export const ALL_MODULES: ScoringSettings['modules'] = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** The paper's scoring run: rank 8, alpha 32, all seven modules, lr 1e-4, AdamW wd 0.1, warmup 3%, clip 1, 40 steps of 4 × 256. */
export const DEFAULT_SETTINGS: ScoringSettings = {
  steps: 40,
  rank: 8,
  alpha: 32,
  modules: [...ALL_MODULES],
  lr: 1e-4,
  weightDecay: 0.1,
  warmupSteps: 2,
  schedule: 'constant',
  maxGradNorm: 1,
  batchSize: 4,
  seqLen: 256,
  seed: 0,
  shuffle: true,
  weights: 'auto', // f16 storage where the adapter has shader-f16, else f32 (ScoreStep shows which)
  checkpointing: false,
  maxGpuMemory: null, // what the adapter allows; the layers stream from host memory when the model does not fit
};

/** Warmup as the engine fills it in: 3% of the steps, rounded up. */
export const warmupFor = (steps: number): number => Math.ceil(0.03 * steps);

export const DEFAULT_DATASET_OPTIONS: Omit<DatasetOptions, 'maxSeqLen'> = { heldOut: 0.1, seed: 0 };

export const DEFAULT_PLAN_CHOICE: PlanChoice = { prune: 0, merge: 0, keepFraction: 0.2, protectLast: false, rankedBy: 'paper' };

export const DEFAULT_EVALUATE_OPTIONS: EvaluateOptions = { maxExamples: 64, generations: 3, maxNewTokens: 24 };
