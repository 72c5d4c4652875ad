// One LoRA training run, shared by GradPruner's scoring run (gradprune/pipeline.ts, with IGIA recorded after each
// clip) and recovery fine-tuning (eval/recovery.ts, with an evaluation before and after): the model, trainer and
// batches built from the settings (run-settings.ts), the step loop (cancel, pause / stop, progress throttled to an
// interval with tokens/s, elapsed and ETA: ./step-loop.ts), and one result shape. A run adds its own work through a LoraRunTask.
// A run can save snapshots as it goes (hooks.checkpoint) and continue from one (hooks.resumeFrom) as if never stopped:
// ./run-snapshot.ts, ./run-resume.ts.

import { batchIterator } from '../data/batch';
import type { TokenBatch, TokenizedExample } from '../data/types';
import { GradPruneError } from '../errors';
import type { Gpu } from '../gpu/device';
import type { ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import { initLoraAdapters, type LoraAdapter } from './lora';
import { defaultGpuBudget } from './memory';
import { GpuModel, type WeightsSource } from './model';
import { SCORING_ADAMW } from './optimizer';
import { resolveWeightStorage } from './precision';
import { restoreAdapters, RunCheckpointer, runIdentity, type RunCheckpoint } from './run-resume';
import { loraConfigOf, scheduleOf, type LoraRunSettings } from './run-settings';
import { checkSnapshotMatches, type RunKind, type RunSnapshot, type RunWorkState } from './run-snapshot';
import { runLoraSteps, type LoraStepHooks, type LoraStepProgress, type LoraSteps } from './step-loop';
import { Trainer, TrainingDiverged, type TrainerOptions } from './trainer';
import type { Residency } from './weights';

/** The schedule, AdamW (the paper's betas and eps, the run's weight decay) and clipping of a run. */
export const trainerOptionsOf = (s: LoraRunSettings): TrainerOptions => ({
  schedule: scheduleOf(s),
  adamw: { ...SCORING_ADAMW, weightDecay: s.weightDecay },
  maxGradNorm: s.maxGradNorm,
});

interface LoraRunLoad {
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
async function loadLoraRunModel(
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
      throw new Error(`The shared weights (${weights.storage}) are not this run's model and precision (${storage}).`);
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

/** An endless stream of the run's training batches (seeded shuffle per epoch, or file order) from batch `from` on. */
export function trainingBatches(examples: readonly TokenizedExample[], s: Pick<LoraRunSettings, 'batchSize' | 'seed' | 'shuffle'>, padTokenId: number, from: number): () => TokenBatch {
  const it = batchIterator(examples, { batchSize: s.batchSize, padTokenId, seed: s.seed, shuffle: s.shuffle });
  it.skip(from);
  return () => it.next();
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
  /** Save a snapshot every few steps and when stopped early (never mid-step), to continue the run later. */
  checkpoint?: RunCheckpoint;
  /** Continue this snapshot's run (checked against the model, data and settings first); initialAdapters are not used. */
  resumeFrom?: RunSnapshot;
}

export type { RunCheckpoint } from './run-resume';

/** Where a run's batches come from: tokenized examples (batched here), or one explicit batch per step. */
export type LoraRunData =
  | { kind: 'examples'; examples: readonly TokenizedExample[]; padTokenId: number }
  /** `fingerprint` names the batches for a snapshot's identity (default 'explicit batches': not checked). */
  | { kind: 'batches'; batch: (step: number) => TokenBatch; fingerprint?: string };

/** The run in its messages: `${title} was cancelled after 2 steps.` (subject `subject`), and the length hint's `noun`. */
export interface LoraRunName {
  title: string;
  subject: string;
  noun: string;
}

/** What a run does on the loaded model beside training (GradPruner's IGIA; recovery's evaluation). */
export interface LoraRunWork<P extends LoraStepProgress, R> {
  /** Recorded into each step's encoder after clipping, before the update (sees the clipped adapter gradients). */
  afterClip?: (encoder: GPUCommandEncoder, step: number) => void;
  /** Awaited before each step the caller lets run (e.g. until a staging ring has room). */
  beforeStep?: (step: number) => Promise<void>;
  /** The run's progress from the loop's (only called when there is an onStep). */
  progress?: (p: LoraStepProgress) => P | Promise<P>;
  /** GPU bytes it allocated beside the model (counted in the run's peak). */
  gpuBytes?: () => number;
  /** Its own state for a snapshot, between steps (what `start` gets back as `resumed.work`). */
  snapshot?: () => Promise<RunWorkState>;
  /** After the last step (or an early stop): the run's own results, merged into the run's result. */
  finish: (steps: LoraSteps) => Promise<R>;
  destroy?: () => void;
}

/** A run's part in runLoraRun: its name, how it stops, and its work, set up once the model is loaded. */
export interface LoraRunTask<P extends LoraStepProgress, R> {
  name: LoraRunName;
  /** The kind of run its snapshots record. */
  kind: RunKind;
  /** The model's fingerprint (model/fingerprint.ts), for snapshots; only asked for when checkpointing or resuming. */
  modelFingerprint?: () => Promise<string>;
  /** A stop from beforeStep before the first step is a cancel (true), or an empty run (false). */
  atLeastOneStep: boolean;
  /** GPU bytes the work will allocate beside the model, kept out of the model's budget. */
  reservedBytes?: number;
  /**
   * On the loaded model, before the first step; `cancelled(when)` is the run's cancel error ("during the final
   * evaluation"). A resumed run gives the steps done and the work's state from the snapshot, to continue from.
   */
  start: (model: GpuModel, cancelled: (when: string) => GradPruneError, resumed: { step: number; work: RunWorkState } | null) => Promise<LoraRunWork<P, R>>;
}

export interface GpuUsage {
  weights: Residency;
  /** Bytes of every buffer the run allocated at its peak: weights, job, LoRA state and the work's buffers. */
  peakBytes: number;
  /** The budget the run was held to (--max-gpu-memory, or what the adapter allows). */
  limitBytes: number;
}

/** The run's curves and token counts, its settings (weights as resolved on this adapter), the steps trained, and its GPU use. */
export interface LoraRunResult<S extends LoraRunSettings> extends LoraSteps {
  settings: S;
  /** Steps trained (fewer than settings.steps when stopped early). */
  steps: number;
  gpu: GpuUsage;
}

function cancelledError(name: LoraRunName, when: string): GradPruneError {
  return new GradPruneError('cancelled', `${name.title} was cancelled ${when}.`, { subject: name.subject });
}

const afterSteps = (n: number) => `after ${n} step${n === 1 ? '' : 's'}`;

function checkAdapterRanks(adapters: readonly LoraAdapter[], rank: number): void {
  for (const a of adapters) {
    if (a.A.length !== rank * a.inFeatures || a.B.length !== a.outFeatures * rank) {
      throw new GradPruneError('input', `The initial adapter ${a.name} does not have rank ${rank} (A has ${a.A.length} values for ${a.inFeatures} inputs).`, {
        subject: a.name,
        hint: 'Train with the rank the adapter was trained with.',
      });
    }
  }
}

/**
 * One LoRA run of `settings.steps` steps on the model's weights (uploaded, or the shared `hooks.weights`): a fresh
 * adapter (or `hooks.initialAdapters`, or the adapters and moments of `hooks.resumeFrom`), the task's work set up
 * on the loaded model, the step loop (snapshots saved by `hooks.checkpoint`), the work's results. Everything the run
 * allocated is destroyed when it ends, however it ends.
 */
export async function runLoraRun<S extends LoraRunSettings, P extends LoraStepProgress, R>(
  gpu: Gpu,
  weights: { config: ModelConfig; store: TensorStore },
  data: LoraRunData,
  settings: S,
  hooks: LoraRunHooks<P> & LoraRunTask<P, R>,
): Promise<LoraRunResult<S> & R> {
  const { name, resumeFrom } = hooks;
  const cancelled = (when: string) => cancelledError(name, when);
  if (data.kind === 'examples') checkExampleLengths(data.examples, settings.seqLen, name.noun);
  if (hooks.initialAdapters) checkAdapterRanks(hooks.initialAdapters, settings.rank);
  const done = resumeFrom?.step ?? 0;
  const identity = hooks.checkpoint || resumeFrom ? await identityOf(gpu, data, settings, hooks) : null;
  if (resumeFrom) checkSnapshotMatches(resumeFrom, identity!);
  const nextBatch = data.kind === 'batches' ? data.batch : trainingBatches(data.examples, settings, data.padTokenId, done);
  if (hooks.signal?.aborted) throw cancelled('before it started');
  const adapters = (!resumeFrom && hooks.initialAdapters) || initLoraAdapters(weights.config, loraConfigOf(settings), settings.seed);

  const model = await loadLoraRunModel(gpu, weights, settings, adapters, { onLoad: hooks.onLoad, weights: hooks.weights, reservedBytes: hooks.reservedBytes });
  let work: LoraRunWork<P, R> | null = null;
  let trainer: Trainer | null = null;
  try {
    if (resumeFrom) restoreAdapters(model, resumeFrom.adapters, resumeFrom.source ?? 'The run snapshot');
    work = await hooks.start(model, cancelled, resumeFrom ? { step: done, work: resumeFrom.work } : null);
    const { afterClip, progress } = work;
    trainer = new Trainer(model, { ...trainerOptionsOf(settings), afterClip });
    trainer.step = done;
    const workState = work.snapshot ?? (async () => ({ tensors: new Map(), values: {} }));
    const checkpointer = new RunCheckpointer(identity, hooks.checkpoint, done, { model, work: workState });
    const { onStep } = hooks;
    const beforeStep = async (s: number) => ((await hooks.beforeStep?.(s)) === false ? false : work!.beforeStep?.(s));
    const steps = await runLoraSteps(trainer, nextBatch, { ...hooks, beforeStep }, {
      steps: settings.steps,
      cancelled: (n) => cancelled(afterSteps(n)),
      atLeastOneStep: hooks.atLeastOneStep,
      onProgress: onStep && (async (p) => onStep(progress ? await progress(p) : (p as P))),
      from: resumeFrom && { step: done, curves: resumeFrom.curves },
      afterStep: (curves) => checkpointer.afterStep(curves),
    }).catch(async (e: unknown) => {
      if (e instanceof TrainingDiverged) throw checkpointer.diverged(e, settings);
      if (e instanceof GradPruneError && e.code === 'cancelled') await checkpointer.stopped();
      throw e;
    });
    if (steps.losses.length < settings.steps) await checkpointer.stopped();
    const own = await work.finish(steps);
    gpu.throwIfFailed();
    const gpuUsage: GpuUsage = {
      weights: model.weights.residency,
      peakBytes: model.allocatedBytes + (work.gpuBytes?.() ?? 0),
      limitBytes: settings.maxGpuMemory ?? defaultGpuBudget(gpu.adapter),
    };
    return { ...steps, settings: { ...settings, weights: model.weightStorage }, steps: steps.losses.length, gpu: gpuUsage, ...own };
  } finally {
    trainer?.destroy();
    work?.destroy?.();
    model.destroy();
  }
}

/** The identity a snapshot of this run records (and a resumed one must match): weights as this device stores them. */
async function identityOf<P extends LoraStepProgress, R>(gpu: Gpu, data: LoraRunData, settings: LoraRunSettings, task: LoraRunTask<P, R>) {
  const storage = resolveWeightStorage(settings.weights, gpu.adapter).storage;
  const fingerprint = (await task.modelFingerprint?.()) ?? '';
  const source = data.kind === 'examples' ? data : { fingerprint: data.fingerprint ?? 'explicit batches' };
  return runIdentity(task.kind, fingerprint, source, { ...settings, weights: storage });
}
