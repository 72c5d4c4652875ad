// The settings of a LoRA training run — GradPruner's scoring run and recovery fine-tuning — with the paper's
// defaults and the functions that fill them in and check them. Plain data and pure code only (no GPU, no Node):
// the studio imports its starting choices from here, so nothing below may import the engine.

import { GradPruneError } from '../errors';
import { LINEAR_MODULES, type LinearModule } from '../model/config';
import { validateLoraConfig, type LoraConfig } from './lora';
import { checkWeightPrecision, type WeightPrecision } from './precision';
import { validateSchedule, type DecayKind, type LrSchedule } from './schedule';

/** Everything that decides a LoRA training run (plain data: runs write it beside their results). */
export interface LoraRunSettings {
  /** Training steps. */
  steps: number;
  rank: number;
  alpha: number;
  modules: LinearModule[];
  lr: number;
  weightDecay: number;
  /** Linear warmup from 0 over this many steps (default: 3% of the steps, rounded up, as transformers does). */
  warmupSteps: number;
  schedule: DecayKind;
  /** Clip the global gradient norm to this; null: no clipping. */
  maxGradNorm: number | null;
  batchSize: number;
  /** Tokens per row (the longest an example may be). */
  seqLen: number;
  seed: number;
  /** Shuffle the examples each epoch (seeded); false: file order, batchSize rows at a time. */
  shuffle: boolean;
  /** Weight storage: 'auto' (f16 where the adapter has shader-f16, else f32), 'f32' or 'f16'. A finished run records what was used. */
  weights: WeightPrecision;
  checkpointing: boolean;
  /**
   * GPU memory the run may use, weights included (`--max-gpu-memory`); null: what the adapter allows. When the
   * resident job does not fit, the decoder layers stream from host memory (checkpointing on).
   */
  maxGpuMemory: number | null;
}

/** The paper's LoRA, for scoring and fine-tuning alike: rank 8, alpha 32, all seven modules, lr 1e-4, AdamW wd 0.1, clip 1, batches of 4 × 256. */
export const PAPER_LORA_RUN: Readonly<Omit<LoraRunSettings, 'steps' | 'warmupSteps' | 'schedule'>> = Object.freeze({
  rank: 8,
  alpha: 32,
  modules: [...LINEAR_MODULES],
  lr: 1e-4,
  weightDecay: 0.1,
  maxGradNorm: 1.0,
  batchSize: 4,
  seqLen: 256,
  seed: 0,
  shuffle: true,
  weights: 'auto' as WeightPrecision,
  checkpointing: false,
  maxGpuMemory: null,
});

/** transformers' warmup_ratio: the default warmup is ceil(0.03 · steps). */
export const DEFAULT_WARMUP_RATIO = 0.03;

/** The warmup a run of `steps` steps gets when none is given. */
export const warmupFor = (steps: number): number => Math.ceil(DEFAULT_WARMUP_RATIO * steps);

/** GradPruneError('input') naming the setting. */
export const badSetting = (subject: string, message: string, hint?: string): GradPruneError => new GradPruneError('input', message, { subject, hint });

export function checkPositiveInt(v: number, name: string): void {
  if (!Number.isInteger(v) || v < 1) throw badSetting(name, `The ${name} must be a whole number ≥ 1 (got ${v}).`);
}

/** `given` without its undefined (and, with `dropNull`, null) values: what a caller actually chose. */
function definedOf<T extends object>(given: T, dropNull = false): Partial<T> {
  return Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined && !(dropNull && v === null))) as Partial<T>;
}

/**
 * The defaults with every defined value of `given` over them, warmupSteps filled in from the steps when not given,
 * and every shared value checked. Run-specific fields pass through (the caller checks them).
 */
export function resolveLoraRunSettings<S extends LoraRunSettings>(given: Partial<S>, defaults: Readonly<Omit<S, 'warmupSteps'>>): S {
  const defined = definedOf(given);
  const s = { ...defaults, modules: [...defaults.modules], ...defined } as S;
  s.warmupSteps = defined.warmupSteps ?? warmupFor(s.steps);
  validateLoraRunSettings(s);
  return s;
}

export function validateLoraRunSettings(s: LoraRunSettings): void {
  checkPositiveInt(s.steps, 'number of steps');
  checkPositiveInt(s.batchSize, 'batch size');
  checkPositiveInt(s.seqLen, 'sequence length');
  if (s.seqLen < 2) throw badSetting('sequence length', `The sequence length must be at least 2 tokens (got ${s.seqLen}).`);
  if (!Number.isInteger(s.seed)) throw badSetting('seed', `The seed must be a whole number (got ${s.seed}).`);
  if (!(s.weightDecay >= 0)) throw badSetting('weight decay', `The weight decay must be ≥ 0 (got ${s.weightDecay}).`);
  if (s.maxGradNorm !== null && !(s.maxGradNorm > 0)) throw badSetting('clip', `The gradient clipping norm must be > 0 (got ${s.maxGradNorm}).`);
  if (s.warmupSteps >= s.steps && s.schedule !== 'constant') {
    throw badSetting('warmup steps', `${s.warmupSteps} warmup steps leave none of the ${s.steps} steps for the ${s.schedule} decay.`, 'Use fewer warmup steps or a constant schedule.');
  }
  checkWeightPrecision(s.weights);
  if (s.maxGpuMemory !== null && !(Number.isSafeInteger(s.maxGpuMemory) && s.maxGpuMemory > 0)) {
    throw badSetting('GPU memory limit', `The GPU memory limit must be a positive number of bytes (got ${s.maxGpuMemory}).`);
  }
  validateLoraConfig(loraConfigOf(s));
  validateSchedule(scheduleOf(s));
}

export const loraConfigOf = (s: Pick<LoraRunSettings, 'rank' | 'alpha' | 'modules'>): LoraConfig => ({ rank: s.rank, alpha: s.alpha, modules: s.modules });

export const scheduleOf = (s: Pick<LoraRunSettings, 'lr' | 'warmupSteps' | 'schedule' | 'steps'>): LrSchedule => ({
  lr: s.lr,
  warmupSteps: s.warmupSteps,
  decay: s.schedule,
  totalSteps: s.steps,
});

// ---- GradPruner's scoring run -------------------------------------------------------------------------------

/** Everything that decides a scoring run (plain data: it is written into scores.json and the recipe); t = `steps`. */
export type ScoringSettings = LoraRunSettings;

/** The paper's scoring run: rank 8, alpha 32, all seven modules, lr 1e-4, AdamW wd 0.1, warmup 3%, clip 1, 40 steps of 4 × 256. */
export const DEFAULT_SCORING_SETTINGS: Readonly<Omit<ScoringSettings, 'warmupSteps'>> = Object.freeze({
  ...PAPER_LORA_RUN,
  steps: 40,
  schedule: 'constant' as DecayKind,
});

/**
 * A quick look before the paper's run: few steps of short rows (minutes where the paper's settings take hours on a
 * slow GPU); the rest as the paper. The studio offers it beside the defaults.
 */
export const QUICK_RUN: Readonly<Pick<LoraRunSettings, 'steps' | 'batchSize' | 'seqLen'>> = Object.freeze({ steps: 10, batchSize: 2, seqLen: 64 });

/** Defaults filled in and every value checked (GradPruneError('input') naming the setting). */
export function resolveScoringSettings(given: Partial<ScoringSettings> = {}): ScoringSettings {
  return resolveLoraRunSettings(given, DEFAULT_SCORING_SETTINGS);
}

// ---- Recovery fine-tuning ------------------------------------------------------------------------------------

/** Everything that decides a recovery run (plain data: it is written beside the exported model). */
export interface RecoverySettings extends LoraRunSettings {
  /** Training steps; resolved from `epochs` when that is given instead. */
  steps: number;
  /** Passes over the training examples (null: `steps` was given). */
  epochs: number | null;
  /** Examples held out for the before / after evaluation: a fraction in [0, 1) or a whole count. */
  heldOut: number;
}

/**
 * The paper's fine-tuning: LoRA rank 8, alpha 32 on all seven modules, lr 1e-4, AdamW (wd 0.1) with clipping at 1 —
 * the same optimiser as the scoring run, which is the start of this same fine-tuning. Warmup 3% then linear decay,
 * as transformers' Trainer does by default when the number of steps is known.
 */
export const DEFAULT_RECOVERY_SETTINGS: Readonly<Omit<RecoverySettings, 'warmupSteps' | 'epochs'>> = Object.freeze({
  ...PAPER_LORA_RUN,
  steps: 100,
  schedule: 'linear' as DecayKind,
  heldOut: 0.1,
});

export type RecoverySettingsInput = Partial<Omit<RecoverySettings, 'epochs'>> & { epochs?: number | null };

/**
 * Defaults filled in and every value checked; with `epochs`, the steps are ceil(epochs · trainExamples / batchSize).
 * Giving both steps and epochs is an error (they would disagree).
 */
export function resolveRecoverySettings(given: RecoverySettingsInput, trainExamples: number): RecoverySettings {
  const defined = definedOf(given, true);
  if (defined.steps !== undefined && defined.epochs !== undefined) {
    throw badSetting('steps', `Give either a number of steps (${defined.steps}) or of epochs (${defined.epochs}), not both.`);
  }
  const batchSize = defined.batchSize ?? DEFAULT_RECOVERY_SETTINGS.batchSize;
  checkPositiveInt(batchSize, 'batch size');
  let steps = defined.steps ?? DEFAULT_RECOVERY_SETTINGS.steps;
  let epochs: number | null = null;
  if (defined.epochs !== undefined) {
    const e = defined.epochs ?? NaN;
    epochs = e;
    if (!(Number.isFinite(e) && e > 0)) throw badSetting('epochs', `The number of epochs must be a positive number (got ${epochs}).`);
    if (trainExamples < 1) throw badSetting('epochs', 'There are no training examples to count epochs over.', 'Use a dataset with more usable rows, or hold out fewer.');
    steps = Math.max(1, Math.ceil((e * trainExamples) / batchSize));
  }
  const s = resolveLoraRunSettings<RecoverySettings>({ ...defined, steps, epochs }, { ...DEFAULT_RECOVERY_SETTINGS, epochs: null });
  if (!(s.heldOut >= 0) || (s.heldOut >= 1 && !Number.isInteger(s.heldOut))) {
    throw badSetting('held-out', `The held-out share must be a fraction in [0, 1) or a whole count (got ${s.heldOut}).`);
  }
  return s;
}
