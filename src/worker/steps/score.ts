// Step 3: GradPruner's scoring run (the first LoRA steps, IGIA gathered from their gradients) on the training
// split, paced by the session's run control, and the GPU memory such a run needs.

import { toErrorInfo, type ErrorInfo } from '../../errors';
import type { AdapterSummary } from '../../gpu/device';
import { igiaMemory } from '../../gradprune/igia';
import { runScoring, SNAPSHOT_HIDDEN } from '../../gradprune/pipeline';
import { defaultGpuBudget, estimateMemory as estimate, planResidency, type MemoryEstimate, type MemoryPlan } from '../../nn/memory';
import { plannedWeightStorage } from '../../nn/precision';
import { DEFAULT_SCORING_SETTINGS } from '../../nn/run-settings';
import type { RequestOf, ResultBody, ScoreSnapshot } from '../protocol';
import { jobOf, uploadStage, type StepContext } from '../session';
import { checkpointTo, runKeyOf, storedRun } from './saved-run';
import { rowLength, trainSplitFor } from './dataset';
import { methodRankings, studioHiddenStatePairs } from './method-rankings';

const snapshot = (steps: number, s: { layerScores: number[]; moduleScores: number[][]; layerScoresCode: number[] }): ScoreSnapshot => ({
  steps,
  layerScores: s.layerScores,
  moduleScores: s.moduleScores,
  layerScoresCode: s.layerScoresCode,
});

/**
 * A scoring run, its snapshot kept every few steps (removed when it completes); `resume` continues the stored run of
 * the loaded model and dataset with the settings it was started with, and gives what an uninterrupted run gives.
 */
export async function score(ctx: StepContext, req: RequestOf<'score'>): Promise<ResultBody<'score'>> {
  const { session } = ctx;
  const data = session.needDataset();
  session.notTraining();
  const key = await runKeyOf(ctx, 'scoring');
  const stored = req.resume ? await storedRun<RequestOf<'score'>['settings']>(ctx, key) : null;
  const resumeFrom = req.resume ? await ctx.runs.load(key) : undefined; // throws when there is nothing to continue
  const settings = stored?.settings ?? req.settings;
  const seqLen = settings.seqLen ?? data.options.maxSeqLen;
  const train = trainSplitFor(ctx, data, seqLen);
  const gpu = await ctx.gpu();
  return session.training(async (control) => {
    session.dropAfter('dataset');
    // The dense weights from the cache: the Check after scoring runs on the same upload.
    const dense = session.weightsFor(ctx, gpu, session.checkpoint, 'dense', jobOf(settings));
    ctx.progress('Uploading the weights');
    // The other methods' hidden-state pairs, gathered in the same forward passes (not when continuing a snapshot
    // taken before the studio gathered them: that run keeps to IGIA).
    const gathersHidden = !resumeFrom || resumeFrom.work.tensors.has(SNAPSHOT_HIDDEN);
    try {
      // Rows never exceed the longest example: a shorter T saves memory and time.
      const result = await runScoring(
        gpu,
        session.checkpoint,
        { kind: 'examples', examples: train, padTokenId: data.set.padTokenId },
        { ...settings, seqLen: Math.min(seqLen, rowLength(train)) },
        {
          ...control.hooks(ctx.id, (step, p) => ctx.post({ type: 'scoreStep', ...step, scores: snapshot(p.step + 1, p) }), (stage) => ctx.progress(stage)),
          onLoad: (done, total) => ctx.progress(uploadStage('dense', done, total), total ? done / total : undefined),
          weights: dense.source,
          checkpoint: checkpointTo(ctx, key, settings.steps ?? DEFAULT_SCORING_SETTINGS.steps, settings),
          resumeFrom,
          ...(gathersHidden ? { hiddenStates: studioHiddenStatePairs(session.checkpoint.config.numLayers) } : {}),
        },
      );
      ctx.progress('Ranking the layers by every method');
      const rankings = await methodRankings(session.checkpoint, result);
      await ctx.runs.remove(key); // complete (or stopped by the person, who has its scores): nothing to continue
      session.scoring = result;
      return {
        scores: snapshot(result.steps, result),
        kendall: result.kendall,
        losses: result.losses,
        stopped: result.steps < result.settings.steps,
        settings: { ...result.settings, seqLen },
        elapsedSeconds: result.elapsedSeconds,
        targetTokens: result.targetTokens,
        rankings,
      };
    } finally {
      dense.release();
    }
  });
}

/**
 * The scoring run's GPU memory for these settings, planned as the engine will (planResidency): resident when the
 * weights and the job fit the limit, else streamed layer by layer (with the host memory that needs and the bytes
 * uploaded per step), else the refusal of the smallest way.
 */
export function estimateMemory(ctx: StepContext, { settings }: RequestOf<'estimateMemory'>, adapter: AdapterSummary | null): ResultBody<'estimateMemory'> {
  const config = ctx.session.checkpoint.config;
  const lora = { rank: settings.rank, alpha: settings.alpha, modules: settings.modules };
  const plan: MemoryPlan = { batchSize: settings.batchSize, seqLen: settings.seqLen, lora, weights: plannedWeightStorage(settings.weights, adapter), checkpointing: settings.checkpointing, training: true };
  // IGIA keeps the factors of every layer but 0 in host memory (igiaBytes); the GPU holds only its staging ring.
  const igia = igiaMemory(config, settings.modules, settings.rank, settings.steps);
  const adapterBudget = adapter ? defaultGpuBudget(adapter) : null;
  const budget = settings.maxGpuMemory ?? adapterBudget;
  let memory: MemoryEstimate;
  let problem: ErrorInfo | null = null;
  if (adapter && budget !== null) {
    try {
      memory = planResidency(config, plan, adapter, 'auto', budget - igia.gpuBytes).estimate;
    } catch (e) {
      problem = toErrorInfo(e);
      // Shown as the smallest way it could run: streamed (when the model has layers to stream).
      const bindingBytes = Math.min(adapter.maxStorageBufferBindingSize, adapter.maxBufferSize);
      const streamed = config.numLayers > 2;
      memory = estimate(config, { ...plan, bindingBytes, residency: streamed ? 'streamed' : 'resident', checkpointing: plan.checkpointing || streamed });
    }
  } else {
    memory = estimate(config, plan);
  }
  return { estimate: memory, igiaBytes: igia.hostBytes, problem, budget, adapterBudget };
}
