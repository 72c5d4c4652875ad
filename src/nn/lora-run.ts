// What every LoRA training run shares — GradPruner's scoring run (gradprune/pipeline.ts) and recovery fine-tuning
// (eval/recovery.ts) alike: the settings and their checks, the engine, trainer and batches built from them, and the
// step loop (cancel, pause / stop, progress throttled to an interval with tokens/s, elapsed and ETA). Each run adds
// its own per-step extras (IGIA scores, epochs) through the progress callback.

import { batchIterator } from '../data/batch';
import type { Batch as DataBatch, TokenizedExample } from '../data/types';
import { GradPruneError } from '../errors';
import type { Gpu } from '../gpu/device';
import { LINEAR_MODULES, type LinearModule, type ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import { validateLoraConfig, type LoraAdapter, type LoraConfig } from './lora';
import { defaultGpuBudget } from './memory';
import { GpuModel, type Batch as EngineBatch, type WeightsSource } from './model';
import { SCORING_ADAMW } from './optimizer';
import { checkWeightPrecision, resolveWeightStorage, type WeightPrecision } from './precision';
import { validateSchedule, type DecayKind, type LrSchedule } from './schedule';
import type { Trainer, TrainerOptions } from './trainer';

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

/** GradPruneError('input') naming the setting. */
export const badSetting = (subject: string, message: string, hint?: string): GradPruneError => new GradPruneError('input', message, { subject, hint });

export function checkPositiveInt(v: number, name: string): void {
  if (!Number.isInteger(v) || v < 1) throw badSetting(name, `The ${name} must be a whole number ≥ 1 (got ${v}).`);
}

/**
 * The defaults with every defined value of `given` over them, warmupSteps filled in from the steps when not given,
 * and every shared value checked. Run-specific fields pass through (the caller checks them).
 */
export function resolveLoraRunSettings<S extends LoraRunSettings>(given: Partial<S>, defaults: Readonly<Omit<S, 'warmupSteps'>>): S {
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as Partial<S>;
  const s = { ...defaults, modules: [...defaults.modules], ...defined } as S;
  s.warmupSteps = defined.warmupSteps ?? Math.ceil(DEFAULT_WARMUP_RATIO * s.steps);
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

/** The schedule, AdamW (the paper's betas and eps, the run's weight decay) and clipping of a run. */
export const trainerOptionsOf = (s: LoraRunSettings): TrainerOptions => ({
  schedule: scheduleOf(s),
  adamw: { ...SCORING_ADAMW, weightDecay: s.weightDecay },
  maxGradNorm: s.maxGradNorm,
});

export interface LoraRunLoad {
  /** Bytes of weights read so far, while the model loads. */
  onLoad?: (done: number, total: number) => void;
  /** Weights already on the device (e.g. a worker's cache): the run is a job on them and leaves them when destroyed. */
  weights?: WeightsSource;
  /** What the run allocates beside the model (e.g. IGIA's staging ring), kept out of the model's budget. */
  reservedBytes?: number;
}

/**
 * The GPU model with trainable adapters, sized for the run's batches, within the run's GPU budget (less
 * `reservedBytes`). With a weights source the run is a job on the weights it gives; without, it loads weights it owns.
 */
export async function loadLoraRunModel(
  gpu: Gpu,
  model: { config: ModelConfig; store: TensorStore },
  s: LoraRunSettings,
  adapters: readonly LoraAdapter[],
  { onLoad, weights: source, reservedBytes = 0 }: LoraRunLoad = {},
): Promise<GpuModel> {
  const memoryBudget = (s.maxGpuMemory ?? defaultGpuBudget(gpu.adapter)) - reservedBytes;
  if (source) {
    const storage = resolveWeightStorage(s.weights, gpu.adapter).storage;
    const weights = await source(storage, { batchSize: s.batchSize, seqLen: s.seqLen, lora: loraConfigOf(s), weights: storage, checkpointing: s.checkpointing, training: true });
    if (weights.gpu !== gpu || weights.config !== model.config || weights.storage !== storage) {
      throw new GradPruneError('input', `The shared weights (${weights.storage}) are not this run's model and precision (${storage}).`, { subject: 'weights' });
    }
    return GpuModel.create(weights, {
      batchSize: s.batchSize,
      seqLen: s.seqLen,
      lora: loraConfigOf(s),
      adapters,
      checkpointing: s.checkpointing,
      memoryBudget,
    });
  }
  return GpuModel.load(gpu, model.config, model.store, {
    batchSize: s.batchSize,
    seqLen: s.seqLen,
    lora: loraConfigOf(s),
    adapters,
    weights: s.weights,
    checkpointing: s.checkpointing,
    memoryBudget,
    onProgress: onLoad,
  });
}

/** Every example must fit in a row; `run` names the run in the hint ('scoring', 'fine-tuning'). */
export function checkExampleLengths(examples: readonly TokenizedExample[], seqLen: number, run: string): void {
  const tooLong = examples.find((e) => e.inputIds.length > seqLen);
  if (tooLong) {
    throw new GradPruneError('input', `The example from line ${tooLong.line} has ${tooLong.inputIds.length} tokens, more than the sequence length ${seqLen}.`, {
      subject: 'sequence length',
      hint: `Tokenize the dataset with maxSeqLen equal to the ${run} sequence length.`,
    });
  }
}

/** A data batch as the engine takes it: each row cut to its real length (the engine pads with masked zeros). */
export function engineBatch(b: DataBatch): EngineBatch {
  const rows = Array.from({ length: b.B }, (_, i) => i);
  return {
    ids: rows.map((i) => b.inputIds.subarray(i * b.T, i * b.T + b.lengths[i])),
    lossMask: rows.map((i) => b.lossMask.subarray(i * b.T, i * b.T + b.lengths[i])),
  };
}

/** An endless stream of the run's training batches (seeded shuffle per epoch, or file order). */
export function trainingBatches(examples: readonly TokenizedExample[], s: LoraRunSettings, padTokenId: number): () => EngineBatch {
  const it = batchIterator(examples, { batchSize: s.batchSize, padTokenId, seed: s.seed, shuffle: s.shuffle });
  return () => engineBatch(it.next());
}

/** What a run reports after a step. */
export interface LoraStepProgress {
  /** 0-based index of the step just finished. */
  step: number;
  steps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Every finished step so far (for a live curve). */
  losses: number[];
  lrs: number[];
  gradNorms: number[];
  tokensPerSecond: number;
  elapsedSeconds: number;
  etaSeconds: number;
}

export interface LoraStepHooks {
  /** Default 250 ms; 0 reports every step. */
  progressIntervalMs?: number;
  /** Cancels between steps with GradPruneError('cancelled'). */
  signal?: AbortSignal;
  /** Awaited before each step (a paused run waits here); resolving to false ends training early with the steps done. */
  beforeStep?: (step: number) => Promise<boolean | void>;
}

export interface LoraRunHooks<P extends LoraStepProgress> extends LoraStepHooks {
  /** Bytes of weights uploaded so far, while the model loads. */
  onLoad?: (done: number, total: number) => void;
  /** After a step, at most once per `progressIntervalMs` (and always after the last step). */
  onStep?: (p: P) => void;
  /** Start from these adapter values (e.g. a PEFT adapter, or a fixture's init) instead of PEFT's seeded init. */
  initialAdapters?: readonly LoraAdapter[];
  /** Train on weights already on the device (the worker's cache); without, the run uploads weights it owns. */
  weights?: WeightsSource;
}

export interface LoraStepOptions {
  steps: number;
  /** The error a cancel throws after `done` steps. */
  cancelled: (done: number) => GradPruneError;
  /** A stop from beforeStep before the first step is a cancel (true), or an empty run (false). */
  atLeastOneStep: boolean;
  /** After a step, at most once per progressIntervalMs and always after the last (awaited). */
  onProgress?: (p: LoraStepProgress) => void | Promise<void>;
}

export interface LoraSteps {
  losses: number[];
  lrs: number[];
  gradNorms: number[];
  /** Real (unpadded) tokens read and target tokens trained on. */
  tokens: number;
  targetTokens: number;
  elapsedSeconds: number;
}

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** Up to `opts.steps` training steps on `nextBatch(step)`; returns the per-step curves and token counts. */
export async function runLoraSteps(trainer: Trainer, nextBatch: (step: number) => EngineBatch, hooks: LoraStepHooks, opts: LoraStepOptions): Promise<LoraSteps> {
  const { steps, cancelled, onProgress } = opts;
  const losses: number[] = [], lrs: number[] = [], gradNorms: number[] = [];
  let tokens = 0, targetTokens = 0;
  const interval = hooks.progressIntervalMs ?? 250;
  const start = now();
  let lastReport = -Infinity;
  for (let s = 0; s < steps; s++) {
    if (hooks.signal?.aborted) throw cancelled(s);
    if (hooks.beforeStep && (await hooks.beforeStep(s)) === false) {
      if (s === 0 && opts.atLeastOneStep) throw cancelled(0);
      break;
    }
    if (hooks.signal?.aborted) throw cancelled(s);
    const batch = nextBatch(s);
    const step = await trainer.trainStep(batch);
    losses.push(step.loss);
    lrs.push(step.lr);
    gradNorms.push(step.gradNorm);
    tokens += batch.ids.reduce((n, row) => n + row.length, 0);
    targetTokens += step.tokens;
    if (onProgress && (s === steps - 1 || now() - lastReport >= interval)) {
      lastReport = now();
      const elapsed = (lastReport - start) / 1000;
      await onProgress({
        step: s,
        steps,
        loss: step.loss,
        lr: step.lr,
        gradNorm: step.gradNorm,
        losses: [...losses],
        lrs: [...lrs],
        gradNorms: [...gradNorms],
        tokensPerSecond: elapsed > 0 ? tokens / elapsed : 0,
        elapsedSeconds: elapsed,
        etaSeconds: (elapsed / (s + 1)) * (steps - s - 1),
      });
    }
  }
  return { losses, lrs, gradNorms, tokens, targetTokens, elapsedSeconds: (now() - start) / 1000 };
}
