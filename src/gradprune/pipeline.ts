// GradPruner end to end, engine-level (no DOM; the worker and the CLI both call it):
//   runScoring: t LoRA steps on the GPU with IGIA recorded into each step's encoder after clipping → layer and
//               module scores, per-step loss / lr / grad norm, and the IGIA state a later merge needs;
//   runPrune:   scores → plan → F rebuilt from the IGIA state → sign-consistent merge → exported checkpoint files.

import { GradPruneError } from '../errors';
import type { Gpu } from '../gpu/device';
import type { Checkpoint } from '../model/checkpoint';
import { LINEAR_MODULES, linearWeightName, type LinearModule, type ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import { batchIterator } from '../data/batch';
import type { TokenizedExample } from '../data/types';
import { exportCheckpoint } from '../export/checkpoint';
import type { PruneRunInfo } from '../export/recipe';
import { initLoraAdapters, validateLoraConfig, type LoraAdapter, type LoraConfig } from '../nn/lora';
import { GpuModel, type Batch as EngineBatch, type WeightStorage } from '../nn/model';
import { SCORING_ADAMW } from '../nn/optimizer';
import { validateSchedule, type DecayKind, type LrSchedule } from '../nn/schedule';
import { Trainer } from '../nn/trainer';
import { modelFingerprint } from './fingerprint';
import { IgiaScorer } from './igia';
import { IgiaRebuilder, igiaStateFromScorer, type IgiaState } from './igia-state';
import { mergeLayers, type MergeResult } from './merge';
import { makePlan, type PlanOptions, type PrunePlan } from './plan';
import { kendallTau } from './scores';

/** Everything that decides a scoring run (plain data: it is written into scores.json and the recipe). */
export interface ScoringSettings {
  /** Training steps t. */
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
  /** Shuffle the examples (seeded); false: file order, batchSize rows at a time. */
  shuffle: boolean;
  weights: WeightStorage;
  checkpointing: boolean;
}

/** The paper's scoring run: rank 8, alpha 32, all seven modules, lr 1e-4, AdamW wd 0.1, warmup 3%, clip 1, 40 steps of 4 × 256. */
export const DEFAULT_SCORING_SETTINGS: Readonly<Omit<ScoringSettings, 'warmupSteps'>> = Object.freeze({
  steps: 40,
  rank: 8,
  alpha: 32,
  modules: [...LINEAR_MODULES],
  lr: 1e-4,
  weightDecay: 0.1,
  schedule: 'constant',
  maxGradNorm: 1.0,
  batchSize: 4,
  seqLen: 256,
  seed: 0,
  shuffle: true,
  weights: 'f32',
  checkpointing: false,
});

export const DEFAULT_WARMUP_RATIO = 0.03;

/** Defaults filled in and every value checked (GradPruneError('input') naming the setting). */
export function resolveScoringSettings(given: Partial<ScoringSettings> = {}): ScoringSettings {
  const s: ScoringSettings = {
    ...DEFAULT_SCORING_SETTINGS,
    modules: [...DEFAULT_SCORING_SETTINGS.modules],
    warmupSteps: Math.ceil(DEFAULT_WARMUP_RATIO * (given.steps ?? DEFAULT_SCORING_SETTINGS.steps)),
    ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)),
  };
  const bad = (subject: string, message: string, hint?: string) => new GradPruneError('input', message, { subject, hint });
  const positiveInt = (v: number, name: string) => {
    if (!Number.isInteger(v) || v < 1) throw bad(name, `The ${name} must be a whole number ≥ 1 (got ${v}).`);
  };
  positiveInt(s.steps, 'number of steps');
  positiveInt(s.batchSize, 'batch size');
  positiveInt(s.seqLen, 'sequence length');
  if (s.seqLen < 2) throw bad('sequence length', `The sequence length must be at least 2 tokens (got ${s.seqLen}).`);
  if (!Number.isInteger(s.seed)) throw bad('seed', `The seed must be a whole number (got ${s.seed}).`);
  if (!(s.weightDecay >= 0)) throw bad('weight decay', `The weight decay must be ≥ 0 (got ${s.weightDecay}).`);
  if (s.maxGradNorm !== null && !(s.maxGradNorm > 0)) throw bad('clip', `The gradient clipping norm must be > 0 (got ${s.maxGradNorm}).`);
  if (s.warmupSteps >= s.steps && s.schedule !== 'constant') {
    throw bad('warmup steps', `${s.warmupSteps} warmup steps leave none of the ${s.steps} steps for the ${s.schedule} decay.`, 'Use fewer warmup steps or a constant schedule.');
  }
  validateLoraConfig(loraOf(s));
  validateSchedule(scheduleOf(s));
  return s;
}

export const loraOf = (s: ScoringSettings): LoraConfig => ({ rank: s.rank, alpha: s.alpha, modules: s.modules });
export const scheduleOf = (s: ScoringSettings): LrSchedule => ({ lr: s.lr, warmupSteps: s.warmupSteps, decay: s.schedule, totalSteps: s.steps });

/** The rows of one training step (right-padded to the engine's T with masked padding). */
export type ScoringBatch = EngineBatch;

/** Where the steps' batches come from: tokenized examples (batched here), or one explicit batch per step. */
export type ScoringData =
  | { kind: 'examples'; examples: readonly TokenizedExample[]; padTokenId: number }
  | { kind: 'batches'; batch: (step: number) => ScoringBatch };

export interface ScoringProgress {
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
  /** The paper's layer scores over the steps so far, [layer]; the module split [layer][7]; the code's score. */
  layerScores: number[];
  moduleScores: number[][];
  layerScoresCode: number[];
  /** Kendall τ-b between the layer ranking now and one step earlier (NaN while the scores are still all 0). */
  kendallTau: number;
}

export interface ScoringHooks {
  /** Bytes of weights uploaded so far, while the model loads. */
  onLoad?: (done: number, total: number) => void;
  /** After a step, at most once per `progressIntervalMs` (and always after the last step). */
  onStep?: (p: ScoringProgress) => void;
  /** Default 250 ms; 0 reports every step. */
  progressIntervalMs?: number;
  /** Cancels between steps with GradPruneError('cancelled'). */
  signal?: AbortSignal;
  /** Awaited before each step (a paused run waits here); resolving to false ends the run early with the steps done (at least one). */
  beforeStep?: (step: number) => Promise<boolean | void>;
  /** Start from these adapter values (e.g. a PEFT adapter, or a fixture's init) instead of PEFT's seeded init. */
  initialAdapters?: readonly LoraAdapter[];
}

export interface ScoringResult {
  settings: ScoringSettings;
  steps: number;
  /** The paper's score per layer: Σ over the elements of F = (1/t) Σ_s ‖S_s‖²_F. */
  layerScores: number[];
  /** Σ_s Σ_modules ‖S_s‖_F per layer (the authors' released script). */
  layerScoresCode: number[];
  /** [layer][module], modules in LINEAR_MODULES order (q, k, v, o, gate, up, down). */
  moduleScores: number[][];
  /** history[s][layer]: the paper's score from steps 0..s. */
  history: number[][];
  /** kendall[s]: τ-b between the ranking after step s and the final one. */
  kendall: number[];
  losses: number[];
  lrs: number[];
  gradNorms: number[];
  /** Tokens read (real, unpadded) and target tokens trained on, over the run. */
  tokens: number;
  targetTokens: number;
  elapsedSeconds: number;
  modelFingerprint: string;
  /** What a later merge needs (per-step factors of every layer but 0). */
  igia: IgiaState;
}

type ScoredModel = { config: ModelConfig; store: TensorStore };

const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());

function cancelled(step: number): GradPruneError {
  return new GradPruneError('cancelled', `Scoring was cancelled after ${step} step${step === 1 ? '' : 's'}.`, { subject: 'scoring' });
}

/** The batch source of a run: explicit batches as given, examples through a seeded (or file-order) iterator. */
function batchSource(data: ScoringData, s: ScoringSettings): (step: number) => ScoringBatch {
  if (data.kind === 'batches') return data.batch;
  const tooLong = data.examples.find((e) => e.inputIds.length > s.seqLen);
  if (tooLong) {
    throw new GradPruneError('input', `The example from line ${tooLong.line} has ${tooLong.inputIds.length} tokens, more than the sequence length ${s.seqLen}.`, {
      subject: 'sequence length',
      hint: 'Tokenize the dataset with maxSeqLen equal to the scoring sequence length.',
    });
  }
  const it = batchIterator(data.examples, { batchSize: s.batchSize, padTokenId: data.padTokenId, seed: s.seed, shuffle: s.shuffle });
  return () => {
    const b = it.next();
    const rows = Array.from({ length: b.B }, (_, i) => i);
    return {
      ids: rows.map((i) => b.inputIds.subarray(i * b.T, i * b.T + b.lengths[i])),
      lossMask: rows.map((i) => b.lossMask.subarray(i * b.T, i * b.T + b.lengths[i])),
    };
  };
}

/** Train LoRA for `settings.steps` steps and gather GradPruner's importance from the clipped gradients. */
export async function runScoring(gpu: Gpu, model: ScoredModel, data: ScoringData, given: Partial<ScoringSettings>, hooks: ScoringHooks = {}): Promise<ScoringResult> {
  const settings = resolveScoringSettings(given);
  const { config } = model;
  const lora = loraOf(settings);
  const nextBatch = batchSource(data, settings);
  if (hooks.signal?.aborted) throw cancelled(0);
  const fingerprint = await modelFingerprint(model);
  const adapters = hooks.initialAdapters ?? initLoraAdapters(config, lora, settings.seed);
  for (const a of adapters) {
    if (a.A.length !== settings.rank * a.inFeatures || a.B.length !== a.outFeatures * settings.rank) {
      throw new GradPruneError('input', `The initial adapter ${a.name} does not have rank ${settings.rank} (A has ${a.A.length} values for ${a.inFeatures} inputs).`, {
        subject: a.name,
        hint: 'Score with the rank the adapter was trained with.',
      });
    }
  }

  const engine = await GpuModel.load(gpu, config, model.store, {
    batchSize: settings.batchSize,
    seqLen: settings.seqLen,
    lora,
    adapters,
    weights: settings.weights,
    checkpointing: settings.checkpointing,
    onProgress: hooks.onLoad,
  });
  let scorer: IgiaScorer | null = null;
  let trainer: Trainer | null = null;
  try {
    const grads = engine.adapters.map((a) => ({ layer: a.layer, module: a.module, gA: { buffer: a.dA }, gB: { buffer: a.dB } }));
    const igia = new IgiaScorer(gpu.device, config, grads, { rank: settings.rank, maxSteps: settings.steps });
    scorer = igia;
    trainer = new Trainer(engine, {
      schedule: scheduleOf(settings),
      adamw: { ...SCORING_ADAMW, weightDecay: settings.weightDecay },
      maxGradNorm: settings.maxGradNorm,
      afterClip: (encoder) => igia.record(encoder),
    });

    const losses: number[] = [], lrs: number[] = [], gradNorms: number[] = [];
    let tokens = 0, targetTokens = 0;
    const interval = hooks.progressIntervalMs ?? 250;
    const start = now();
    let lastReport = -Infinity;
    let previousScores: number[] | null = null;
    for (let s = 0; s < settings.steps; s++) {
      if (hooks.signal?.aborted) throw cancelled(s);
      if (hooks.beforeStep && (await hooks.beforeStep(s)) === false) {
        if (s === 0) throw cancelled(0);
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
      const last = s === settings.steps - 1;
      if (hooks.onStep && (last || now() - lastReport >= interval)) {
        lastReport = now();
        const elapsed = (lastReport - start) / 1000;
        const live = await igia.readScores();
        const current = live.history[live.steps - 1];
        const previous = live.steps > 1 ? live.history[live.steps - 2] : previousScores;
        previousScores = current;
        hooks.onStep({
          step: s,
          steps: settings.steps,
          loss: step.loss,
          lr: step.lr,
          gradNorm: step.gradNorm,
          losses: [...losses],
          lrs: [...lrs],
          gradNorms: [...gradNorms],
          tokensPerSecond: elapsed > 0 ? tokens / elapsed : 0,
          elapsedSeconds: elapsed,
          etaSeconds: (elapsed / (s + 1)) * (settings.steps - s - 1),
          layerScores: live.layerScore,
          moduleScores: live.moduleScore,
          layerScoresCode: live.layerScoreCode,
          kendallTau: previous ? kendallTau(current, previous) : NaN,
        });
      }
    }
    const elapsedSeconds = (now() - start) / 1000;
    const scores = await igia.readScores();
    const state = await igiaStateFromScorer(igia, config, settings.rank, fingerprint);
    gpu.throwIfFailed();
    return {
      settings,
      steps: scores.steps,
      layerScores: scores.layerScore,
      layerScoresCode: scores.layerScoreCode,
      moduleScores: scores.moduleScore,
      history: scores.history,
      kendall: scores.kendall,
      losses,
      lrs,
      gradNorms,
      tokens,
      targetTokens,
      elapsedSeconds,
      modelFingerprint: fingerprint,
      igia: state,
    };
  } finally {
    trainer?.destroy();
    scorer?.destroy();
    engine.destroy();
  }
}

/** What a prune needs of a scoring run (a ScoringResult or a parsed scores.json). */
export interface ScoresInput {
  layerScores: number[];
  layerScoresCode?: number[];
  moduleScores?: number[][];
  /** Rank layers by the paper's score (default) or the released script's. */
  rankBy?: 'paper' | 'code';
  settings?: Partial<ScoringSettings> | Record<string, unknown>;
  data?: PruneRunInfo['data'] | null;
}

export interface PruneResult {
  plan: PrunePlan;
  merge: MergeResult;
  /** The pruned checkpoint folder: file name → contents. */
  files: Map<string, Blob>;
}

export type PrunedModel = Pick<Checkpoint, 'name' | 'config' | 'store' | 'dtype' | 'files'>;

/** Plan from the scores, merge with F rebuilt from the IGIA state, and export the pruned checkpoint. */
export async function runPrune(gpu: Gpu, ckpt: PrunedModel, scores: ScoresInput, igia: IgiaState | null, opts: PlanOptions & { createdAt?: string } = {}): Promise<PruneResult> {
  const rankBy = scores.rankBy ?? 'paper';
  const ranked = rankBy === 'code' ? scores.layerScoresCode : scores.layerScores;
  if (!ranked) throw new GradPruneError('input', `The scores have no ${rankBy === 'code' ? 'layerScoresCode' : 'layerScores'} to rank layers by.`, { subject: 'scores' });
  const { createdAt, ...planOptions } = opts;
  const plan = makePlan(ranked, ckpt.config, planOptions);
  if (plan.merged.length > 0) {
    if (!igia) {
      throw new GradPruneError('file', `The plan merges layer${plan.merged.length > 1 ? 's' : ''} ${plan.merged.join(', ')}, but no IGIA state was given.`, {
        subject: 'igia',
        hint: 'Keep scores.igia.safetensors beside scores.json (score again if it is lost), or prune with no merging.',
      });
    }
    for (const p of plan.merged) {
      const missing = LINEAR_MODULES.find((m) => !igia.factors.has(linearWeightName(p, m)));
      if (missing) {
        throw new GradPruneError('file', `The IGIA state has no gradient factors for layer ${p} (${missing}), which the plan merges.`, {
          subject: `layer ${p}`,
          hint: 'Score again, keeping factors for every layer but 0.',
        });
      }
    }
  }
  const rebuilder = igia ? new IgiaRebuilder(gpu.device, ckpt.config, igia) : null;
  const merge = await mergeLayers(gpu.device, plan, ckpt.config, {
    readWeight: (name) => ckpt.store.readF32(name),
    importance: async (layer, module) => rebuilder!.importance(layer, module),
  });
  gpu.throwIfFailed();
  const settings = (scores.settings ?? {}) as Record<string, unknown>;
  const files = await exportCheckpoint(ckpt, {
    plan,
    merged: merge.weights,
    run: {
      baseModel: ckpt.name,
      settings,
      seed: typeof settings.seed === 'number' ? settings.seed : undefined,
      data: scores.data ?? undefined,
      scores: { layerScore: scores.layerScores, moduleScore: scores.moduleScores, layerScoreCode: scores.layerScoresCode, rankedBy: rankBy },
      addedElements: merge.addedElements,
      createdAt,
    },
  });
  return { plan, merge, files };
}
