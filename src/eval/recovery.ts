// Recovery fine-tuning of a pruned model: a fresh LoRA trained for a number of steps (or epochs) on the task data,
// with the held-out loss (and multiple-choice accuracy, when the data has questions) measured before the first step
// and after the last, on the same GPU model. The adapters come back as host values, ready to be merged into the
// weights (export/merge-adapter.ts) or written in PEFT's layout (export/peft.ts).
//
//   const result = await runRecovery(gpu, ckpt, { examples: set.examples, padTokenId: set.padTokenId }, { steps: 200 }, { onStep });
//   result.before.loss → result.after.loss; result.adapters
//
// Engine-level: no DOM, no node: imports (the worker and the CLI both call it).

import type { Batch as DataBatch, MultipleChoiceItem, TokenizedExample } from '../data/types';
import { batchIterator, evalBatches } from '../data/batch';
import { splitTrainHeldOut } from '../data/split';
import { GradPruneError } from '../errors';
import type { Gpu } from '../gpu/device';
import { readback } from '../gpu/tensor';
import { LINEAR_MODULES, type LinearModule, type ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import type { TextTokenizer } from '../model/tokenizer';
import { initLoraAdapters, validateLoraConfig, type LoraAdapter, type LoraConfig } from '../nn/lora';
import { GpuModel, type Batch as EngineBatch, type WeightStorage } from '../nn/model';
import { validateSchedule, type DecayKind, type LrSchedule } from '../nn/schedule';
import { Trainer } from '../nn/trainer';
import { gpuScoringModel } from './engines';
import { heldOutLoss, type HeldOutLoss } from './loss';
import { scoreMultipleChoice } from './multiple-choice';

/** Everything that decides a recovery run (plain data: it is written beside the exported model). */
export interface RecoverySettings {
  /** Training steps; resolved from `epochs` when that is given instead. */
  steps: number;
  /** Passes over the training examples (null: `steps` was given). */
  epochs: number | null;
  rank: number;
  alpha: number;
  modules: LinearModule[];
  lr: number;
  weightDecay: number;
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
  /** Examples held out for the before / after evaluation: a fraction in [0, 1) or a whole count. */
  heldOut: number;
  weights: WeightStorage;
  checkpointing: boolean;
}

/**
 * The paper's fine-tuning: LoRA rank 8, alpha 32 on all seven modules, lr 1e-4, AdamW (wd 0.1) with clipping at 1 —
 * the same optimiser as the scoring run, which is the start of this same fine-tuning. Warmup 3% then linear decay,
 * as transformers' Trainer does by default when the number of steps is known.
 */
export const DEFAULT_RECOVERY_SETTINGS: Readonly<Omit<RecoverySettings, 'warmupSteps' | 'epochs'>> = Object.freeze({
  steps: 100,
  rank: 8,
  alpha: 32,
  modules: [...LINEAR_MODULES],
  lr: 1e-4,
  weightDecay: 0.1,
  schedule: 'linear' as DecayKind,
  maxGradNorm: 1.0,
  batchSize: 4,
  seqLen: 256,
  seed: 0,
  shuffle: true,
  heldOut: 0.1,
  weights: 'f32' as WeightStorage,
  checkpointing: false,
});

export const RECOVERY_WARMUP_RATIO = 0.03;

export type RecoverySettingsInput = Partial<Omit<RecoverySettings, 'epochs'>> & { epochs?: number | null };

const bad = (subject: string, message: string, hint?: string) => new GradPruneError('input', message, { subject, hint });

/**
 * Defaults filled in and every value checked; with `epochs`, the steps are ceil(epochs · trainExamples / batchSize).
 * Giving both steps and epochs is an error (they would disagree).
 */
export function resolveRecoverySettings(given: RecoverySettingsInput, trainExamples: number): RecoverySettings {
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined && v !== null)) as RecoverySettingsInput;
  if (defined.steps !== undefined && defined.epochs !== undefined) {
    throw bad('steps', `Give either a number of steps (${defined.steps}) or of epochs (${defined.epochs}), not both.`);
  }
  const base = { ...DEFAULT_RECOVERY_SETTINGS, modules: [...DEFAULT_RECOVERY_SETTINGS.modules], ...defined };
  const positiveInt = (v: number, name: string) => {
    if (!Number.isInteger(v) || v < 1) throw bad(name, `The ${name} must be a whole number ≥ 1 (got ${v}).`);
  };
  positiveInt(base.batchSize, 'batch size');
  let steps = base.steps;
  let epochs: number | null = null;
  if (defined.epochs !== undefined) {
    const e = defined.epochs ?? NaN;
    epochs = e;
    if (!(Number.isFinite(e) && e > 0)) throw bad('epochs', `The number of epochs must be a positive number (got ${epochs}).`);
    if (trainExamples < 1) throw bad('epochs', 'There are no training examples to count epochs over.', 'Use a dataset with more usable rows, or hold out fewer.');
    steps = Math.max(1, Math.ceil((e * trainExamples) / base.batchSize));
  }
  const s: RecoverySettings = {
    ...base,
    steps,
    epochs,
    warmupSteps: defined.warmupSteps ?? Math.ceil(RECOVERY_WARMUP_RATIO * steps),
  };
  positiveInt(s.steps, 'number of steps');
  positiveInt(s.seqLen, 'sequence length');
  if (s.seqLen < 2) throw bad('sequence length', `The sequence length must be at least 2 tokens (got ${s.seqLen}).`);
  if (!Number.isInteger(s.seed)) throw bad('seed', `The seed must be a whole number (got ${s.seed}).`);
  if (!(s.weightDecay >= 0)) throw bad('weight decay', `The weight decay must be ≥ 0 (got ${s.weightDecay}).`);
  if (s.maxGradNorm !== null && !(s.maxGradNorm > 0)) throw bad('clip', `The gradient clipping norm must be > 0 (got ${s.maxGradNorm}).`);
  if (!(s.heldOut >= 0) || (s.heldOut >= 1 && !Number.isInteger(s.heldOut))) {
    throw bad('held-out', `The held-out share must be a fraction in [0, 1) or a whole count (got ${s.heldOut}).`);
  }
  if (s.warmupSteps >= s.steps && s.schedule !== 'constant') {
    throw bad('warmup steps', `${s.warmupSteps} warmup steps leave none of the ${s.steps} steps for the ${s.schedule} decay.`, 'Use fewer warmup steps or a constant schedule.');
  }
  validateLoraConfig(recoveryLora(s));
  validateSchedule(recoverySchedule(s));
  return s;
}

export const recoveryLora = (s: RecoverySettings): LoraConfig => ({ rank: s.rank, alpha: s.alpha, modules: s.modules });
export const recoverySchedule = (s: RecoverySettings): LrSchedule => ({ lr: s.lr, warmupSteps: s.warmupSteps, decay: s.schedule, totalSteps: s.steps });

export interface RecoveryData {
  /** Every tokenized example; the run splits off `settings.heldOut` of them (seeded) for evaluation. */
  examples: readonly TokenizedExample[];
  padTokenId: number;
  /** With a tokenizer, held-out examples that are multiple-choice questions are also scored for accuracy. */
  tokenizer?: TextTokenizer;
}

export interface RecoveryProgress {
  /** 0-based index of the step just finished. */
  step: number;
  steps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Every finished step so far (the live loss curve). */
  losses: number[];
  lrs: number[];
  gradNorms: number[];
  /** Passes over the training examples so far (fractional). */
  epoch: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
  etaSeconds: number;
}

export type EvalPhase = 'before' | 'after';

export interface RecoveryHooks {
  /** Bytes of weights uploaded so far, while the model loads. */
  onLoad?: (done: number, total: number) => void;
  /** Held-out batches (then multiple-choice requests) scored, before the first step and after the last. */
  onEval?: (phase: EvalPhase, done: number, total: number) => void;
  /** After a step, at most once per `progressIntervalMs` (and always after the last step). */
  onStep?: (p: RecoveryProgress) => void;
  /** Default 250 ms; 0 reports every step. */
  progressIntervalMs?: number;
  /** Cancels (between steps or evaluation batches) with GradPruneError('cancelled'). */
  signal?: AbortSignal;
  /** Awaited before each step (a paused run waits here); resolving to false stops training early and evaluates. */
  beforeStep?: (step: number) => Promise<boolean | void>;
  /** Start from these adapter values instead of PEFT's seeded init (B = 0, so "before" is the model itself). */
  initialAdapters?: readonly LoraAdapter[];
}

export interface Accuracy {
  acc: number;
  accNorm: number;
  items: number;
}

export interface RecoveryResult {
  settings: RecoverySettings;
  lora: LoraConfig;
  /** Steps trained (fewer than settings.steps when stopped early). */
  steps: number;
  losses: number[];
  lrs: number[];
  gradNorms: number[];
  trainExamples: number;
  heldOutExamples: number;
  /** Held-out loss of the model before training and with the trained adapter (null when nothing is held out). */
  before: HeldOutLoss | null;
  after: HeldOutLoss | null;
  /** Multiple-choice accuracy on the held-out questions (null when there are none, or no tokenizer was given). */
  accuracyBefore: Accuracy | null;
  accuracyAfter: Accuracy | null;
  /** The trained adapters (host values, f32). */
  adapters: LoraAdapter[];
  /** Real (unpadded) tokens read and target tokens trained on. */
  tokens: number;
  targetTokens: number;
  elapsedSeconds: number;
}

type TrainedModel = { config: ModelConfig; store: TensorStore };

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

function cancelled(what: string): GradPruneError {
  return new GradPruneError('cancelled', `Fine-tuning was cancelled ${what}.`, { subject: 'finetune' });
}

/** A data batch as the engine takes it: each row cut to its real length (the engine pads with masked zeros). */
export function engineBatch(b: DataBatch): EngineBatch {
  const rows = Array.from({ length: b.B }, (_, i) => i);
  return {
    ids: rows.map((i) => b.inputIds.subarray(i * b.T, i * b.T + b.lengths[i])),
    lossMask: rows.map((i) => b.lossMask.subarray(i * b.T, i * b.T + b.lengths[i])),
  };
}

/** The seeded train / held-out split a run with these settings uses (so a caller can evaluate other models on the same held-out set). */
export function recoverySplit<T>(examples: readonly T[], given: Pick<RecoverySettingsInput, 'heldOut' | 'seed'>): { train: T[]; heldOut: T[] } {
  return splitTrainHeldOut(examples, { heldOut: given.heldOut ?? DEFAULT_RECOVERY_SETTINGS.heldOut, seed: given.seed ?? DEFAULT_RECOVERY_SETTINGS.seed });
}

/** Train a fresh LoRA on the (pruned) model and measure the held-out loss before and after. */
export async function runRecovery(gpu: Gpu, model: TrainedModel, data: RecoveryData, given: RecoverySettingsInput = {}, hooks: RecoveryHooks = {}): Promise<RecoveryResult> {
  if (data.examples.length === 0) {
    throw new GradPruneError('dataset', 'There are no examples to fine-tune on.', { hint: 'Load a dataset with usable rows.' });
  }
  const split = recoverySplit(data.examples, given);
  const settings = resolveRecoverySettings(given, split.train.length);
  const tooLong = data.examples.find((e) => e.inputIds.length > settings.seqLen);
  if (tooLong) {
    throw new GradPruneError('input', `The example from line ${tooLong.line} has ${tooLong.inputIds.length} tokens, more than the sequence length ${settings.seqLen}.`, {
      subject: 'sequence length',
      hint: 'Tokenize the dataset with maxSeqLen equal to the fine-tuning sequence length.',
    });
  }
  const lora = recoveryLora(settings);
  if (hooks.signal?.aborted) throw cancelled('before it started');
  const adapters = hooks.initialAdapters ?? initLoraAdapters(model.config, lora, settings.seed);

  const engine = await GpuModel.load(gpu, model.config, model.store, {
    batchSize: settings.batchSize,
    seqLen: settings.seqLen,
    lora,
    adapters,
    weights: settings.weights,
    checkpointing: settings.checkpointing,
    onProgress: hooks.onLoad,
  });
  let trainer: Trainer | null = null;
  try {
    const scoring = gpuScoringModel(engine);
    const questions: MultipleChoiceItem[] = data.tokenizer ? split.heldOut.flatMap((e) => (e.mc ? [e.mc] : [])) : [];
    const evaluate = async (phase: EvalPhase): Promise<{ loss: HeldOutLoss | null; accuracy: Accuracy | null }> => {
      if (split.heldOut.length === 0) return { loss: null, accuracy: null };
      const batches = [...evalBatches(split.heldOut, { batchSize: settings.batchSize, padTokenId: data.padTokenId })];
      const loss = await heldOutLoss(scoring, abortable(batches, hooks.signal, phase), (done) => hooks.onEval?.(phase, done, batches.length));
      let accuracy: Accuracy | null = null;
      if (questions.length && data.tokenizer) {
        const mc = await scoreMultipleChoice(scoring, data.tokenizer, questions, { batchSize: settings.batchSize });
        accuracy = { acc: mc.acc, accNorm: mc.accNorm, items: mc.items };
      }
      return { loss, accuracy };
    };

    const before = await evaluate('before');
    trainer = new Trainer(engine, {
      schedule: recoverySchedule(settings),
      adamw: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: settings.weightDecay },
      maxGradNorm: settings.maxGradNorm,
    });
    const batches = batchIterator(split.train, { batchSize: settings.batchSize, padTokenId: data.padTokenId, seed: settings.seed, shuffle: settings.shuffle });
    const losses: number[] = [], lrs: number[] = [], gradNorms: number[] = [];
    let tokens = 0, targetTokens = 0;
    const interval = hooks.progressIntervalMs ?? 250;
    const start = now();
    let lastReport = -Infinity;
    for (let s = 0; s < settings.steps; s++) {
      if (hooks.signal?.aborted) throw cancelled(`after ${s} step${s === 1 ? '' : 's'}`);
      if (hooks.beforeStep && (await hooks.beforeStep(s)) === false) break;
      if (hooks.signal?.aborted) throw cancelled(`after ${s} step${s === 1 ? '' : 's'}`);
      const batch = engineBatch(batches.next());
      const step = await trainer.trainStep(batch);
      losses.push(step.loss);
      lrs.push(step.lr);
      gradNorms.push(step.gradNorm);
      tokens += batch.ids.reduce((n, row) => n + row.length, 0);
      targetTokens += step.tokens;
      const last = s === settings.steps - 1;
      if (hooks.onStep && (last || now() - lastReport >= interval)) {
        lastReport = now();
        const elapsed = (lastReport - start) / 1000;
        hooks.onStep({
          step: s,
          steps: settings.steps,
          loss: step.loss,
          lr: step.lr,
          gradNorm: step.gradNorm,
          losses: [...losses],
          lrs: [...lrs],
          gradNorms: [...gradNorms],
          epoch: ((s + 1) * settings.batchSize) / split.train.length,
          tokensPerSecond: elapsed > 0 ? tokens / elapsed : 0,
          elapsedSeconds: elapsed,
          etaSeconds: (elapsed / (s + 1)) * (settings.steps - s - 1),
        });
      }
    }
    const elapsedSeconds = (now() - start) / 1000;
    const after = await evaluate('after');
    const trained: LoraAdapter[] = [];
    for (const a of engine.adapters) {
      const [A, B] = [await readback(gpu.device, a.A), await readback(gpu.device, a.B)];
      trained.push({ layer: a.layer, module: a.module, name: a.name, inFeatures: a.inFeatures, outFeatures: a.outFeatures, A, B });
    }
    gpu.throwIfFailed();
    return {
      settings,
      lora,
      steps: losses.length,
      losses,
      lrs,
      gradNorms,
      trainExamples: split.train.length,
      heldOutExamples: split.heldOut.length,
      before: before.loss,
      after: after.loss,
      accuracyBefore: before.accuracy,
      accuracyAfter: after.accuracy,
      adapters: trained,
      tokens,
      targetTokens,
      elapsedSeconds,
    };
  } finally {
    trainer?.destroy();
    engine.destroy();
  }
}

/** The batches, checking the signal before each one. */
function* abortable<T>(items: readonly T[], signal: AbortSignal | undefined, phase: EvalPhase): Generator<T> {
  for (const item of items) {
    if (signal?.aborted) throw cancelled(phase === 'before' ? 'before training' : 'during the final evaluation');
    yield item;
  }
}
