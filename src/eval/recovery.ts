// Recovery fine-tuning of a pruned model: a fresh LoRA trained for a number of steps (or epochs) on the task data,
// with the held-out loss (and multiple-choice accuracy, when the data has questions) measured before the first step
// and after the last, on the same GPU model. The adapters come back as host values, ready to be merged into the
// weights (export/merge-adapter.ts) or written in PEFT's layout (export/peft.ts).
//
//   const result = await runRecovery(gpu, ckpt, { examples: set.examples, padTokenId: set.padTokenId }, { steps: 200 }, { onStep });
//   result.before.loss → result.after.loss; result.adapters
//
// Engine-level: no DOM, no node: imports (the worker and the CLI both call it).

import type { MultipleChoiceItem, TokenizedExample } from '../data/types';
import { evalBatches } from '../data/batch';
import { splitTrainHeldOut } from '../data/split';
import { GradPruneError } from '../errors';
import type { Gpu } from '../gpu/device';
import { readback } from '../gpu/tensor';
import type { ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import type { TextTokenizer } from '../model/tokenizer';
import { initLoraAdapters, type LoraAdapter, type LoraConfig } from '../nn/lora';
import { badSetting as bad, checkExampleLengths, checkPositiveInt, DEFAULT_WARMUP_RATIO, loadLoraRunModel, loraConfigOf, PAPER_LORA_RUN, resolveLoraRunSettings, runLoraSteps, scheduleOf, trainerOptionsOf, trainingBatches } from '../nn/lora-run';
import type { LoraRunHooks, LoraRunSettings, LoraStepProgress, LoraSteps } from '../nn/lora-run';
import type { DecayKind, LrSchedule } from '../nn/schedule';
import { Trainer } from '../nn/trainer';
import { gpuScoringModel } from './engines';
import { heldOutLoss, type HeldOutLoss } from './loss';
import { scoreMultipleChoice } from './multiple-choice';

export { engineBatch } from '../nn/lora-run';

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

export const RECOVERY_WARMUP_RATIO = DEFAULT_WARMUP_RATIO;

export type RecoverySettingsInput = Partial<Omit<RecoverySettings, 'epochs'>> & { epochs?: number | null };

/**
 * Defaults filled in and every value checked; with `epochs`, the steps are ceil(epochs · trainExamples / batchSize).
 * Giving both steps and epochs is an error (they would disagree).
 */
export function resolveRecoverySettings(given: RecoverySettingsInput, trainExamples: number): RecoverySettings {
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined && v !== null)) as RecoverySettingsInput;
  if (defined.steps !== undefined && defined.epochs !== undefined) {
    throw bad('steps', `Give either a number of steps (${defined.steps}) or of epochs (${defined.epochs}), not both.`);
  }
  const batchSize = defined.batchSize ?? DEFAULT_RECOVERY_SETTINGS.batchSize;
  checkPositiveInt(batchSize, 'batch size');
  let steps = defined.steps ?? DEFAULT_RECOVERY_SETTINGS.steps;
  let epochs: number | null = null;
  if (defined.epochs !== undefined) {
    const e = defined.epochs ?? NaN;
    epochs = e;
    if (!(Number.isFinite(e) && e > 0)) throw bad('epochs', `The number of epochs must be a positive number (got ${epochs}).`);
    if (trainExamples < 1) throw bad('epochs', 'There are no training examples to count epochs over.', 'Use a dataset with more usable rows, or hold out fewer.');
    steps = Math.max(1, Math.ceil((e * trainExamples) / batchSize));
  }
  const s = resolveLoraRunSettings<RecoverySettings>({ ...defined, steps, epochs }, { ...DEFAULT_RECOVERY_SETTINGS, epochs: null });
  if (!(s.heldOut >= 0) || (s.heldOut >= 1 && !Number.isInteger(s.heldOut))) {
    throw bad('held-out', `The held-out share must be a fraction in [0, 1) or a whole count (got ${s.heldOut}).`);
  }
  return s;
}

export const recoveryLora: (s: RecoverySettings) => LoraConfig = loraConfigOf;
export const recoverySchedule: (s: RecoverySettings) => LrSchedule = scheduleOf;

export interface RecoveryData {
  /** Every tokenized example; the run splits off `settings.heldOut` of them (seeded) for evaluation. */
  examples: readonly TokenizedExample[];
  padTokenId: number;
  /** With a tokenizer, held-out examples that are multiple-choice questions are also scored for accuracy. */
  tokenizer?: TextTokenizer;
}

export interface RecoveryProgress extends LoraStepProgress {
  /** Passes over the training examples so far (fractional). */
  epoch: number;
}

export type EvalPhase = 'before' | 'after';

/** Load, evaluation and throttled step progress; cancel (between steps or evaluation batches); pause (beforeStep resolving to false stops training early and evaluates); initial adapters (B = 0 in PEFT's init, so "before" is the model itself). */
export interface RecoveryHooks extends LoraRunHooks<RecoveryProgress> {
  /** Held-out batches (then multiple-choice requests) scored, before the first step and after the last. */
  onEval?: (phase: EvalPhase, done: number, total: number) => void;
}

export interface Accuracy {
  acc: number;
  accNorm: number;
  items: number;
}

/** The run's curves and token counts (LoraSteps), the held-out loss and accuracy before and after, and the trained adapters. */
export interface RecoveryResult extends LoraSteps {
  settings: RecoverySettings;
  lora: LoraConfig;
  /** Steps trained (fewer than settings.steps when stopped early). */
  steps: number;
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
}

type TrainedModel = { config: ModelConfig; store: TensorStore };

function cancelled(what: string): GradPruneError {
  return new GradPruneError('cancelled', `Fine-tuning was cancelled ${what}.`, { subject: 'finetune' });
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
  checkExampleLengths(data.examples, settings.seqLen, 'fine-tuning');
  const lora = recoveryLora(settings);
  if (hooks.signal?.aborted) throw cancelled('before it started');
  const adapters = hooks.initialAdapters ?? initLoraAdapters(model.config, lora, settings.seed);

  const engine = await loadLoraRunModel(gpu, model, settings, adapters, { onLoad: hooks.onLoad, weights: hooks.weights });
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
    trainer = new Trainer(engine, trainerOptionsOf(settings));
    const onStep = hooks.onStep;
    const withEpoch = (p: LoraStepProgress) => onStep!({ ...p, epoch: ((p.step + 1) * settings.batchSize) / split.train.length });
    const run = await runLoraSteps(trainer, trainingBatches(split.train, settings, data.padTokenId), hooks, {
      steps: settings.steps,
      cancelled: (s) => cancelled(`after ${s} step${s === 1 ? '' : 's'}`),
      atLeastOneStep: false,
      onProgress: onStep && withEpoch,
    });
    const after = await evaluate('after');
    const trained: LoraAdapter[] = [];
    for (const a of engine.adapters) {
      const [A, B] = [await readback(gpu.device, a.A), await readback(gpu.device, a.B)];
      trained.push({ layer: a.layer, module: a.module, name: a.name, inFeatures: a.inFeatures, outFeatures: a.outFeatures, A, B });
    }
    gpu.throwIfFailed();
    return {
      settings: { ...settings, weights: engine.weightStorage }, // 'auto' as resolved on this adapter
      lora,
      ...run,
      steps: run.losses.length,
      trainExamples: split.train.length,
      heldOutExamples: split.heldOut.length,
      before: before.loss,
      after: after.loss,
      accuracyBefore: before.accuracy,
      accuracyAfter: after.accuracy,
      adapters: trained,
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
