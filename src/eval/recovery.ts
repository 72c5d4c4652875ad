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
import type { LoraAdapter, LoraConfig } from '../nn/lora';
import { checkExampleLengths, runLoraRun, type LoraRunHooks, type LoraRunName, type LoraRunResult } from '../nn/lora-run';
import type { LoraStepProgress } from '../nn/step-loop';
import type { GpuModel } from '../nn/model';
import { DEFAULT_RECOVERY_SETTINGS, loraConfigOf, resolveRecoverySettings, type RecoverySettings, type RecoverySettingsInput } from '../nn/run-settings';
import { modelFingerprint } from '../model/fingerprint';
import { gpuScoringModel } from './engines';
import { heldOutLoss, type HeldOutLoss } from './loss';
import { scoreMultipleChoice } from './multiple-choice';

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

/**
 * Load, evaluation and throttled step progress; cancel (between steps or evaluation batches); pause (beforeStep
 * resolving to false stops training early and evaluates); initial adapters (B = 0 in PEFT's init, so "before" is the
 * model itself); snapshots every few steps (checkpoint) and continuing one (resumeFrom: "before" is the snapshot's).
 */
export interface RecoveryHooks extends LoraRunHooks<RecoveryProgress> {
  /** Held-out batches (then multiple-choice requests) scored, before the first step and after the last. */
  onEval?: (phase: EvalPhase, done: number, total: number) => void;
}

export interface Accuracy {
  acc: number;
  accNorm: number;
  items: number;
}

/** What recovery adds to a LoRA run: the held-out loss and accuracy before and after, and the trained adapters. */
export interface RecoveryOutcome {
  lora: LoraConfig;
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

/** The run's curves, token counts and GPU use, the held-out loss and accuracy before and after, and the trained adapters. */
export type RecoveryResult = LoraRunResult<RecoverySettings> & RecoveryOutcome;

type TrainedModel = { config: ModelConfig; store: TensorStore };

const FINE_TUNING: LoraRunName = { title: 'Fine-tuning', subject: 'finetune', noun: 'fine-tuning' };

/** The seeded train / held-out split a run with these settings uses (so a caller can evaluate other models on the same held-out set). */
export function recoverySplit<T>(examples: readonly T[], given: Pick<RecoverySettingsInput, 'heldOut' | 'seed'>): { train: T[]; heldOut: T[] } {
  return splitTrainHeldOut(examples, { heldOut: given.heldOut ?? DEFAULT_RECOVERY_SETTINGS.heldOut, seed: given.seed ?? DEFAULT_RECOVERY_SETTINGS.seed });
}

export type Evaluation = { loss: HeldOutLoss | null; accuracy: Accuracy | null };

/** The held-out loss (and multiple-choice accuracy) of the run's model as it is now. */
export function heldOutEvaluation(engine: GpuModel, heldOut: readonly TokenizedExample[], data: RecoveryData, settings: RecoverySettings, hooks: RecoveryHooks, cancelled: (when: string) => GradPruneError) {
  const scoring = gpuScoringModel(engine);
  const questions: MultipleChoiceItem[] = data.tokenizer ? heldOut.flatMap((e) => (e.mc ? [e.mc] : [])) : [];
  return async (phase: EvalPhase): Promise<Evaluation> => {
    if (heldOut.length === 0) return { loss: null, accuracy: null };
    const batches = [...evalBatches(heldOut, { batchSize: settings.batchSize, padTokenId: data.padTokenId })];
    const when = phase === 'before' ? 'before training' : 'during the final evaluation';
    const loss = await heldOutLoss(scoring, abortable(batches, hooks.signal, () => cancelled(when)), (done) => hooks.onEval?.(phase, done, batches.length));
    let accuracy: Accuracy | null = null;
    if (questions.length && data.tokenizer) {
      const mc = await scoreMultipleChoice(scoring, data.tokenizer, questions, { batchSize: settings.batchSize });
      accuracy = { acc: mc.acc, accNorm: mc.accNorm, items: mc.items };
    }
    return { loss, accuracy };
  };
}

/** Train a fresh LoRA on the (pruned) model and measure the held-out loss before and after. */
export async function runRecovery(gpu: Gpu, model: TrainedModel, data: RecoveryData, given: RecoverySettingsInput = {}, hooks: RecoveryHooks = {}): Promise<RecoveryResult> {
  if (data.examples.length === 0) {
    throw new GradPruneError('dataset', 'There are no examples to fine-tune on.', { hint: 'Load a dataset with usable rows.' });
  }
  const split = recoverySplit(data.examples, given);
  const settings = resolveRecoverySettings(given, split.train.length);
  checkExampleLengths(data.examples, settings.seqLen, FINE_TUNING.noun); // held-out ones too: they are evaluated
  return runLoraRun<RecoverySettings, RecoveryProgress, RecoveryOutcome>(gpu, model, { kind: 'examples', examples: split.train, padTokenId: data.padTokenId }, settings, {
    ...hooks,
    name: FINE_TUNING,
    kind: 'recovery',
    modelFingerprint: () => modelFingerprint(model),
    atLeastOneStep: false,
    start: async (engine, cancelled, resumed) => {
      const evaluate = heldOutEvaluation(engine, split.heldOut, data, settings, hooks, cancelled);
      // A resumed run's model is trained already: its "before" is the one measured when the run began.
      const before = resumed ? evaluationBefore(resumed.work.values) : await evaluate('before');
      return {
        progress: (p) => ({ ...p, epoch: ((p.step + 1) * settings.batchSize) / split.train.length }),
        snapshot: async () => ({ tensors: new Map(), values: { before } }),
        finish: async () => {
          const after = await evaluate('after');
          const adapters: LoraAdapter[] = [];
          for (const a of engine.adapters) {
            const [A, B] = [await readback(gpu.device, a.A), await readback(gpu.device, a.B)];
            adapters.push({ layer: a.layer, module: a.module, name: a.name, inFeatures: a.inFeatures, outFeatures: a.outFeatures, A, B });
          }
          return {
            lora: loraConfigOf(settings),
            trainExamples: split.train.length,
            heldOutExamples: split.heldOut.length,
            before: before.loss,
            after: after.loss,
            accuracyBefore: before.accuracy,
            accuracyAfter: after.accuracy,
            adapters,
          };
        },
      };
    },
  });
}

/** The evaluation before training a snapshot recorded. */
function evaluationBefore(values: Record<string, unknown>): Evaluation {
  const before = values.before as Partial<Evaluation> | undefined;
  if (typeof before !== 'object' || before === null || !('loss' in before) || !('accuracy' in before)) {
    throw new GradPruneError('input', 'The fine-tuning snapshot has no evaluation from before training.', { subject: 'snapshot', hint: 'Start the fine-tuning afresh.' });
  }
  return before as Evaluation;
}

/** The batches, checking the signal before each one. */
function* abortable<T>(items: readonly T[], signal: AbortSignal | undefined, cancelled: () => GradPruneError): Generator<T> {
  for (const item of items) {
    if (signal?.aborted) throw cancelled();
    yield item;
  }
}
