// GradPruner end to end, engine-level (no DOM; the worker and the CLI both call it):
//   runScoring: t LoRA steps on the GPU with IGIA recorded into each step's encoder after clipping → layer and
//               module scores, per-step loss / lr / grad norm, and the IGIA state a later merge needs;
//   runPrune:   scores → plan → F rebuilt from the IGIA state → sign-consistent merge → run info and the
//               exported checkpoint files (./pruned-folder.ts).

import { GradPruneError } from '../errors';
import type { Gpu } from '../gpu/device';
import type { Checkpoint } from '../model/checkpoint';
import { LINEAR_MODULES, linearWeightName, type ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import type { CheckpointSink, WrittenFiles } from '../export/sink';
import type { ExportStats } from '../export/weights';
import { runLoraRun, type LoraRunData, type LoraRunHooks, type LoraRunName, type LoraRunResult } from '../nn/lora-run';
import type { HiddenStatePair, HiddenStateStats } from '../nn/hidden-stats';
import type { LoraStepProgress } from '../nn/step-loop';
import { resolveScoringSettings, type ScoringSettings } from '../nn/run-settings';
import { modelFingerprint } from '../model/fingerprint';
import { IgiaScorer, igiaMemory } from './igia';
import { IgiaRebuilder, igiaStateFromScorer, type IgiaState } from './igia-state';
import { LayerMerger, mergeLayers, type MergeResult, type MergeSource } from './merge';
import { makePlan, mergesAllowed, type PlanOptions, type PrunePlan } from './plan';
import { exportCheckpoint, exportCheckpointTo } from './pruned-folder';
import type { PruneRunInfo } from './recipe';
import { kendallTau } from './scores';
import type { RankBy } from './ranking';

export type { GpuUsage } from '../nn/lora-run';

/** Where the steps' batches come from: tokenized examples (batched here), or one explicit batch per step. */
export type ScoringData = LoraRunData;

export interface ScoringProgress extends LoraStepProgress {
  /** The paper's layer scores over the steps so far, [layer]; the module split [layer][7]; the code's score. */
  layerScores: number[];
  moduleScores: number[][];
  layerScoresCode: number[];
  /** Kendall τ-b between the layer ranking now and one step earlier (NaN while the scores are still all 0). */
  kendallTau: number;
}

/**
 * Load progress, throttled step progress, cancel, pause (beforeStep resolving to false ends the run early with the
 * steps done, at least one), initial adapters; snapshots every few steps (checkpoint) and continuing one (resumeFrom);
 * hidden-state pairs to gather in every step's forward pass (Block Influence, angular distance: importance/index.ts's
 * hiddenStatePairsFor), given back as the result's hiddenStates.
 */
export type ScoringHooks = LoraRunHooks<ScoringProgress> & { hiddenStates?: readonly HiddenStatePair[] };

/** What scoring adds to a LoRA run: the scores, and what a later merge needs. */
export interface ScoringScores {
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
  modelFingerprint: string;
  /** What a later merge needs (per-step factors of every layer but 0). */
  igia: IgiaState;
  /** The hidden-state statistics asked for (hooks.hiddenStates), over every step's forward pass. */
  hiddenStates?: HiddenStateStats;
}

/** The run's curves, token counts and GPU use (scores.json records it as settings.gpu), its scores, and what a later merge needs. */
export type ScoringResult = LoraRunResult<ScoringSettings> & ScoringScores;

type ScoredModel = { config: ModelConfig; store: TensorStore };

const SCORING: LoraRunName = { title: 'Scoring', subject: 'scoring', noun: 'scoring' };

/** The hidden-state sums' name in a run snapshot (beside IgiaScorer.snapshot()'s arrays). */
export const SNAPSHOT_HIDDEN = 'hidden.sums';

/** Train LoRA for `settings.steps` steps and gather GradPruner's importance from the clipped gradients. */
export async function runScoring(gpu: Gpu, model: ScoredModel, data: ScoringData, given: Partial<ScoringSettings>, hooks: ScoringHooks = {}): Promise<ScoringResult> {
  const settings = resolveScoringSettings(given);
  const { config } = model;
  const pairs = hooks.hiddenStates ?? [];
  const hiddenBytes = pairs.length > 0 ? (pairs.length * settings.batchSize * settings.seqLen + pairs.length + 2) * 4 : 0;
  return runLoraRun<ScoringSettings, ScoringProgress, ScoringScores>(gpu, model, data, settings, {
    ...hooks,
    name: SCORING,
    kind: 'scoring',
    modelFingerprint: () => modelFingerprint(model),
    atLeastOneStep: true,
    reservedBytes: igiaMemory(config, settings.modules, settings.rank, settings.steps).gpuBytes + hiddenBytes, // the staging ring, hidden-state sums
    start: async (engine, _cancelled, resumed) => {
      const fingerprint = await modelFingerprint(model);
      const grads = engine.adapters.map((a) => ({ layer: a.layer, module: a.module, gA: { buffer: a.dA }, gB: { buffer: a.dB } }));
      const igia = new IgiaScorer(gpu.device, config, grads, { rank: settings.rank, maxSteps: settings.steps });
      const hidden = pairs.length > 0 ? engine.collectHiddenStates(pairs) : null; // the engine owns and destroys it
      if (resumed) igia.restore(resumed.work.tensors, resumed.step);
      if (resumed && hidden) {
        const sums = resumed.work.tensors.get(SNAPSHOT_HIDDEN);
        if (!sums) throw new GradPruneError('input', 'The run snapshot has no hidden-state statistics, which this run gathers.', { subject: SNAPSHOT_HIDDEN, hint: 'Start afresh.' });
        hidden.restoreSums(sums);
      }
      let previousScores: number[] | null = null;
      return {
        afterClip: (encoder) => igia.record(encoder),
        // Each step's factors leave the GPU through a small staging ring: a step waits only when the ring is full.
        beforeStep: () => igia.ready(),
        progress: async (p) => {
          const live = await igia.readScores();
          const current = live.history[live.steps - 1];
          const previous = live.steps > 1 ? live.history[live.steps - 2] : previousScores;
          previousScores = current;
          return {
            ...p,
            layerScores: live.layerScore,
            moduleScores: live.moduleScore,
            layerScoresCode: live.layerScoreCode,
            kendallTau: previous ? kendallTau(current, previous) : NaN,
          };
        },
        gpuBytes: () => igia.gpuBytes + (hidden?.gpuBytes ?? 0),
        snapshot: async () => {
          const tensors = await igia.snapshot();
          if (hidden) tensors.set(SNAPSHOT_HIDDEN, await hidden.readSums());
          return { tensors, values: {} };
        },
        finish: async () => {
          const scores = await igia.readScores();
          return {
            layerScores: scores.layerScore,
            layerScoresCode: scores.layerScoreCode,
            moduleScores: scores.moduleScore,
            history: scores.history,
            kendall: scores.kendall,
            modelFingerprint: fingerprint,
            igia: await igiaStateFromScorer(igia, config, settings.rank, fingerprint),
            ...(hidden ? { hiddenStates: await hidden.read() } : {}),
          };
        },
        destroy: () => igia.destroy(),
      };
    },
  });
}

/** What a prune needs of a scoring run (a ScoringResult or a parsed scores.json). */
export interface ScoresInput {
  layerScores: number[];
  layerScoresCode?: number[];
  moduleScores?: number[][];
  /** Rank layers by the paper's score (default), the released script's, or another importance method's rankedScores. */
  rankBy?: RankBy;
  /** Another method's layer scores (higher = keep), when rankBy names one: its plan drops layers, never merges (merging needs IGIA's F). */
  rankedScores?: number[];
  settings?: Partial<ScoringSettings> | Record<string, unknown>;
  /** Steps the scoring run trained (fewer than settings.steps when it was stopped early). */
  steps?: number;
  data?: PruneRunInfo['data'] | null;
}

export interface PruneResult {
  plan: PrunePlan;
  merge: MergeResult;
  /** The run as the model card and recipe describe it. */
  run: PruneRunInfo;
  /** The pruned checkpoint folder: file name → contents. */
  files: Map<string, Blob>;
}

export type PrunedModel = Pick<Checkpoint, 'name' | 'config' | 'store' | 'dtype' | 'files'>;

export type PruneRunOptions = PlanOptions & { createdAt?: string };

/** A prune ready to merge: the plan, where the merge reads weights and F, and the run info once it has merged. */
export interface PreparedPrune {
  plan: PrunePlan;
  /** The dense weights, and F rebuilt on the GPU from the IGIA state. */
  source: MergeSource;
  /** The run as the model card and recipe describe it, with the elements the merge added. */
  runInfo(addedElements: Record<string, number>): PruneRunInfo;
}

/** The plan, checked against the IGIA state, and what the merge and the recipe need (the worker merges lazily from it). */
export function preparePrune(gpu: Gpu, ckpt: PrunedModel, scores: ScoresInput, igia: IgiaState | null, opts: PruneRunOptions): PreparedPrune {
  const rankBy = scores.rankBy ?? 'paper';
  const igiaRanked = mergesAllowed(rankBy);
  const ranked = rankBy === 'code' ? scores.layerScoresCode : rankBy === 'paper' ? scores.layerScores : scores.rankedScores;
  if (!ranked) throw new GradPruneError('input', `The scores have no ${rankBy === 'code' ? 'layerScoresCode' : rankBy === 'paper' ? 'layerScores' : `'${rankBy}' layer scores`} to rank layers by.`, { subject: 'scores' });
  const { createdAt, ...planOptions } = opts;
  if (!igiaRanked && (planOptions.merge ?? 0) > 0) {
    throw new GradPruneError('input', `A plan ranked by '${rankBy}' cannot merge layers: merging needs IGIA's importance F, which only an IGIA ranking (paper or code) comes with.`, {
      subject: 'merge',
      hint: 'Set merge to 0, or rank by IGIA.',
    });
  }
  const plan = makePlan(ranked, ckpt.config, igiaRanked ? planOptions : { ...planOptions, merge: 0 });
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
  const source: MergeSource = {
    readWeight: (name) => ckpt.store.readF32(name),
    importance: async (layer, module) => rebuilder!.importance(layer, module),
  };
  const runInfo = (addedElements: Record<string, number>): PruneRunInfo => {
    const settings = (scores.settings ?? {}) as Record<string, unknown>;
    return {
      baseModel: ckpt.name,
      settings,
      seed: typeof settings.seed === 'number' ? settings.seed : undefined,
      stepsRun: scores.steps,
      data: scores.data ?? undefined,
      scores: { layerScore: scores.layerScores, moduleScore: scores.moduleScores, layerScoreCode: scores.layerScoresCode, rankedBy: rankBy, ...(igiaRanked ? {} : { rankedScore: ranked }) },
      addedElements,
      createdAt,
    };
  };
  return { plan, source, runInfo };
}

/** Plan from the scores, merge with F rebuilt from the IGIA state, and export the pruned checkpoint (in memory). */
export async function runPrune(gpu: Gpu, ckpt: PrunedModel, scores: ScoresInput, igia: IgiaState | null, opts: PruneRunOptions = {}): Promise<PruneResult> {
  const { plan, source, runInfo } = preparePrune(gpu, ckpt, scores, igia, opts);
  const merge = await mergeLayers(gpu.device, plan, ckpt.config, source);
  gpu.throwIfFailed();
  const run = runInfo(merge.addedElements);
  const files = await exportCheckpoint(ckpt, { plan, merged: merge.weights, run });
  return { plan, merge, run, files };
}

export interface StreamedPruneResult {
  plan: PrunePlan;
  merge: Pick<MergeResult, 'addedElements' | 'thresholds'>;
  run: PruneRunInfo;
  /** What was written into the sink: file name → bytes. */
  files: WrittenFiles;
}

/**
 * As runPrune, but the checkpoint is streamed into `sink` tensor by tensor as it is made: each merged receiver
 * weight is merged on the GPU when the writer reaches it, so JavaScript holds a few tensors at a time.
 */
export async function runPruneTo(
  gpu: Gpu,
  ckpt: PrunedModel,
  scores: ScoresInput,
  igia: IgiaState | null,
  sink: CheckpointSink,
  opts: PruneRunOptions & { maxShardBytes?: number; stats?: ExportStats } = {},
): Promise<StreamedPruneResult> {
  const { maxShardBytes, stats, ...planOpts } = opts;
  let prepared: PreparedPrune;
  try {
    prepared = preparePrune(gpu, ckpt, scores, igia, planOpts);
  } catch (e) {
    await sink.abort(e);
    throw e;
  }
  const { plan, source, runInfo } = prepared;
  const merger = new LayerMerger(gpu.device, plan, ckpt.config, source);
  try {
    let done: { merge: Pick<MergeResult, 'addedElements' | 'thresholds'>; run: PruneRunInfo } | null = null;
    const files = await exportCheckpointTo(sink, ckpt, {
      plan,
      merged: merger,
      maxShardBytes,
      stats,
      run: async () => {
        const merge = await merger.finish();
        gpu.throwIfFailed();
        done = { merge, run: runInfo(merge.addedElements) };
        return done.run;
      },
    });
    return { plan, ...done!, files };
  } finally {
    merger.destroy();
  }
}
