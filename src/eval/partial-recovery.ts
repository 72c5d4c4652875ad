// Recovery by partial-layer fine-tuning (nn/partial-finetune.ts): lm_head and the last k layers trained in full,
// with the held-out loss (and multiple-choice accuracy) before the first step and after the last, on the same
// seeded split, batches, schedule and step loop as the LoRA recovery (./recovery.ts). The trained tensors come back
// by checkpoint name, to replace the checkpoint's in the export (export/merge-adapter.ts exportReplacedCheckpointTo).
// No snapshots / resume (a LoRA-run feature) here.
//
// Engine-level: no DOM, no node: imports.

import { GradPruneError } from '../errors';
import type { Gpu } from '../gpu/device';
import type { ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import { checkExampleLengths, trainerOptionsOf, trainingBatches } from '../nn/lora-run';
import { GpuModel } from '../nn/model';
import { partialJobOptions, partialLayers, PartialTrainer, planPartialMemory, type PartialMemory } from '../nn/partial-finetune';
import { resolveRecoverySettings, type RecoverySettings, type RecoverySettingsInput } from '../nn/run-settings';
import { runLoraSteps, type LoraSteps } from '../nn/step-loop';
import { heldOutEvaluation, recoverySplit, type Accuracy, type RecoveryData, type RecoveryHooks, type RecoveryProgress } from './recovery';
import type { HeldOutLoss } from './loss';

export interface PartialRecoveryInput extends RecoverySettingsInput {
  /** Train the last k decoder layers (and lm_head). */
  lastLayers: number;
}

export type PartialRecoveryHooks = Pick<RecoveryHooks, 'onLoad' | 'onEval' | 'onStep' | 'beforeStep' | 'signal' | 'progressIntervalMs' | 'now'>;

export interface PartialRecoveryResult extends LoraSteps {
  mode: 'partial';
  /** The LoRA fields of the settings are unused here. */
  settings: RecoverySettings;
  lastLayers: number;
  /** The trained decoder layers. */
  layers: number[];
  steps: number;
  trainExamples: number;
  heldOutExamples: number;
  before: HeldOutLoss | null;
  after: HeldOutLoss | null;
  accuracyBefore: Accuracy | null;
  accuracyAfter: Accuracy | null;
  memory: PartialMemory;
  /** Trained values by checkpoint name (lm_head.weight included; with tied embeddings it is untied). */
  tensors: Map<string, Float32Array>;
  /** The checkpoint had tied embeddings: the export writes lm_head.weight apart. */
  untied: boolean;
}

type TrainedModel = { config: ModelConfig; store: TensorStore };

const cancelledError = (when: string) => new GradPruneError('cancelled', `Partial fine-tuning was cancelled ${when}.`, { subject: 'finetune' });

/** Train lm_head + the last `given.lastLayers` layers of the (pruned) model; the held-out loss before and after. */
export async function runPartialRecovery(gpu: Gpu, model: TrainedModel, data: RecoveryData, given: PartialRecoveryInput, hooks: PartialRecoveryHooks = {}): Promise<PartialRecoveryResult> {
  if (data.examples.length === 0) {
    throw new GradPruneError('dataset', 'There are no examples to fine-tune on.', { hint: 'Load a dataset with usable rows.' });
  }
  const { config } = model;
  const layers = partialLayers(config, given.lastLayers);
  const split = recoverySplit(data.examples, given);
  const settings = { ...resolveRecoverySettings(given, split.train.length), weights: 'f32' as const };
  checkExampleLengths(data.examples, settings.seqLen, 'fine-tuning');
  const shape = { batchSize: settings.batchSize, seqLen: settings.seqLen, checkpointing: settings.checkpointing };
  const plan = planPartialMemory(config, given.lastLayers, shape, gpu.adapter, settings.maxGpuMemory ?? undefined);
  if (hooks.signal?.aborted) throw cancelledError('before it started');

  const engine = await GpuModel.load(gpu, config, model.store, {
    ...shape, ...partialJobOptions(config, given.lastLayers), weights: 'f32', residency: 'resident', memoryBudget: plan.budget - plan.trained.extraBytes, onProgress: hooks.onLoad,
  });
  let trainer: PartialTrainer | null = null;
  try {
    trainer = new PartialTrainer(engine, trainerOptionsOf(settings));
    const evaluate = heldOutEvaluation(engine, split.heldOut, data, settings, hooks, cancelledError);
    const before = await evaluate('before');
    const { onStep } = hooks;
    const steps = await runLoraSteps(trainer, trainingBatches(split.train, settings, data.padTokenId, 0), hooks, {
      steps: settings.steps,
      cancelled: (n) => cancelledError(`after ${n} step${n === 1 ? '' : 's'}`),
      atLeastOneStep: false,
      onProgress: onStep && ((p) => onStep({ ...p, epoch: ((p.step + 1) * settings.batchSize) / split.train.length } satisfies RecoveryProgress)),
    });
    const after = await evaluate('after');
    const tensors = await trainer.readTrained();
    gpu.throwIfFailed();
    return {
      ...steps,
      mode: 'partial',
      settings,
      lastLayers: given.lastLayers,
      layers,
      steps: steps.losses.length,
      trainExamples: split.train.length,
      heldOutExamples: split.heldOut.length,
      before: before.loss,
      after: after.loss,
      accuracyBefore: before.accuracy,
      accuracyAfter: after.accuracy,
      memory: plan.trained,
      tensors,
      untied: config.tiedEmbeddings,
    };
  } finally {
    trainer?.destroy();
    engine.destroy();
  }
}
