// Taylor importance from the frozen weights' gradients on the task data (LLM-Pruner, Ma et al. 2023, arXiv 2305.11627):
// element-wise saliences of every linear weight W with G = ∂L/∂W the mean gradient over the scoring batches and
// Fisher = the mean of the per-batch gradients squared (LLM-Pruner's acc_grad, per example there; per batch here,
// the same with batch size 1):
//   param_first  |W·G|;   param_second |W·Fisher·W| (LLM-Pruner's, no ½);   param_mix |W·G − ½·W·Fisher·W|.
// - The layer-level method `taylor` (issue 14): Σ over a layer's seven linear weights of |W ⊙ G| (biases and norms
//   left out, as LLM-Pruner's importances read `.weight`), first order only.
// - frozenWeightSaliences gives every module's per-row and per-column sums; salienceScorer turns them into the
//   LineScorer width pruning's group importances read (gradprune/width/importance.ts).
// Memory: the gradient sums live on the GPU in f32 beside the weights and a no-LoRA training job: f32 of the linear
// weights of the layers in one pass (×3 with the second-order term: sums of g, g² and this batch's g). As many layers
// per pass as the budget allows, one pass over the batches per group of layers: the tiny fixtures take one pass;
// Llama-3-8B needs 0.87 GB per layer (2.6 GB with second order), 27.9 GB for all 32 layers at once (83.7 GB), so
// on a 24 GB GPU with f16 weights (16 GB) it runs a few layers per pass. A pass's backward stops at its lowest layer
// (no adapters to train below it): k groups cost k forward passes and about k/2 full backward passes.

import type { TokenBatch } from '../../data/types';
import { GradPruneError } from '../../errors';
import type { Gpu } from '../../gpu/device';
import { linearWeightName, type LinearModule, type ModelConfig } from '../../model/config';
import type { TensorStore } from '../../model/safetensors';
import { formatBytes } from '../../format';
import { trainingBatches } from '../../nn/lora-run';
import { defaultGpuBudget, planResidency, type MemoryPlan } from '../../nn/memory';
import { GpuModel } from '../../nn/model';
import { resolveWeightStorage, type WeightPrecision } from '../../nn/precision';
import { resolveScoringSettings } from '../../nn/run-settings';
import { weightGradBytes } from '../../nn/weight-grads';
import { readSaliences, type ModuleSaliences } from '../../nn/weight-saliences';
import { ModelWeights } from '../../nn/weights';
import type { LineScorer } from '../width/importance';
import type { ScoringData } from '../pipeline';
import type { ImportanceMethod } from './method';

export type { ModuleSaliences } from '../../nn/weight-saliences';

export interface SalienceOptions {
  /** The batches the gradients are taken over (the scoring run's, for the comparison). */
  batches: readonly TokenBatch[];
  /** The job's (B, T): at least every batch's. */
  batchSize: number;
  seqLen: number;
  /** Weight storage on the GPU (default 'auto'). */
  weights?: WeightPrecision;
  /** Also the Fisher term (param_second / param_mix): three buffers per weight instead of one. */
  second: boolean;
  /** The layers to score (default every layer). */
  layers?: readonly number[];
  /** Layers per pass over the batches (default: as many as the budget allows). */
  layersPerPass?: number;
  /** GPU bytes for weights, job and gradient sums together (default: what the adapter allows). */
  memoryBudget?: number;
  signal?: AbortSignal;
}

export interface SalienceResult {
  saliences: ModuleSaliences[];
  /** Passes over the batches, and the layers each held. */
  passes: number[][];
  /** GPU bytes at the peak: weights, job and the largest pass's gradient sums. */
  peakGpuBytes: number;
  /** Of which the gradient sums of the largest pass. */
  gradientBytes: number;
  seconds: number;
}

/** The memory a run with these options needs, before anything is allocated: a GradPruneError('memory') when one layer does not fit. */
export function planSaliencePasses(config: ModelConfig, opts: Omit<SalienceOptions, 'batches' | 'signal'>, adapter: Parameters<typeof planResidency>[2]) {
  const layers = opts.layers ?? Array.from({ length: config.numLayers }, (_, l) => l);
  const storage = resolveWeightStorage(opts.weights ?? 'auto', adapter).storage;
  const budget = opts.memoryBudget ?? defaultGpuBudget(adapter);
  const perLayer = weightGradBytes(config, { layers: [0], second: opts.second });
  const plan: MemoryPlan = { batchSize: opts.batchSize, seqLen: opts.seqLen, lora: null, weights: storage, checkpointing: false, training: true };
  let planned: ReturnType<typeof planResidency>;
  try {
    planned = planResidency(config, plan, adapter, 'auto', budget - perLayer);
  } catch (e) {
    if (!(e instanceof GradPruneError) || e.code !== 'memory') throw e;
    throw new GradPruneError('memory', `Taylor importance needs ${formatBytes(perLayer)} for one layer's gradient sums (f32${opts.second ? ', with the Fisher term' : ''}) beside the weights and job, which leaves ${formatBytes(Math.max(0, budget - perLayer))} of the ${formatBytes(budget)} budget for them: ${e.message}`, {
      subject: 'memory',
      hint: opts.second ? 'Use first-order importance (a third of the memory), a larger GPU memory limit, or smaller batches.' : 'Raise the GPU memory limit or use smaller batches.',
    });
  }
  const { residency, estimate } = planned;
  const fit = Math.max(1, Math.floor((budget - estimate.total) / perLayer));
  const perPass = Math.min(layers.length, opts.layersPerPass ?? fit);
  if (perPass > fit) {
    throw new GradPruneError('memory', `Gradients of ${perPass} layers at once need ${formatBytes(perPass * perLayer)} beside ${formatBytes(estimate.total)} for the weights and job; the budget is ${formatBytes(budget)}.`, {
      subject: 'layersPerPass',
      hint: `Use at most ${fit} layers per pass.`,
    });
  }
  const passes: number[][] = [];
  for (let i = 0; i < layers.length; i += perPass) passes.push(layers.slice(i, i + perPass));
  return { storage, residency, passes, perLayer, jobAndWeights: estimate.total, peak: estimate.total + perPass * perLayer };
}

/** What a salience run needs, said before it starts (e.g. "Taylor gradients: 2 layers per pass, 3 passes; …"). */
export function salienceMemoryLine(p: ReturnType<typeof planSaliencePasses>): string {
  const perPass = Math.max(...p.passes.map((l) => l.length));
  const n = p.passes.length;
  return `Taylor gradients: ${perPass} layer${perPass === 1 ? '' : 's'} per pass, ${n} pass${n === 1 ? '' : 'es'} over the batches; ${formatBytes(perPass * p.perLayer)} of f32 gradient sums (${formatBytes(p.perLayer)} a layer) beside ${formatBytes(p.jobAndWeights)} for the weights (${p.residency}) and job: ${formatBytes(p.peak)} in all.`;
}

/**
 * LLM-Pruner's saliences of the frozen linear weights of `opts.layers`, summed by rows and columns (per module):
 * the weights uploaded once, then per group of layers a training job without LoRA whose backward passes over every
 * batch accumulate that group's gradients, reduced on the GPU. Loss per batch: the masked mean cross-entropy.
 */
export async function frozenWeightSaliences(gpu: Gpu, model: { config: ModelConfig; store: TensorStore }, opts: SalienceOptions): Promise<SalienceResult> {
  if (opts.batches.length === 0) throw new GradPruneError('input', 'Taylor importance needs at least one batch of the task data.', { subject: 'data' });
  const start = performance.now();
  const p = planSaliencePasses(model.config, opts, gpu.adapter);
  const weights = await ModelWeights.load(gpu, model.config, model.store, { storage: p.storage, residency: p.residency });
  const saliences: ModuleSaliences[] = [];
  let peak = 0;
  try {
    for (const layers of p.passes) {
      const job = GpuModel.create(weights, { batchSize: opts.batchSize, seqLen: opts.seqLen, lora: null, training: true, weightGrads: { layers, second: opts.second } });
      try {
        for (const b of opts.batches) {
          opts.signal?.throwIfAborted();
          await job.run(b, true);
        }
        saliences.push(...(await readSaliences(job, opts.batches.length)));
        peak = Math.max(peak, job.allocatedBytes);
      } finally {
        job.destroy();
      }
    }
  } finally {
    weights.destroy();
  }
  return { saliences, passes: p.passes, peakGpuBytes: peak, gradientBytes: Math.max(...p.passes.map((l) => l.length)) * p.perLayer, seconds: (performance.now() - start) / 1000 };
}

export type TaylorImportanceKind = 'param_first' | 'param_second' | 'param_mix';
const SALIENCE_OF = { param_first: 'first', param_second: 'second', param_mix: 'mix' } as const;

/**
 * Width pruning's LineScorer over a salience result: the per-row / per-column sums of one module for `kind`
 * (param_second and param_mix need a result computed with `second`).
 */
export function salienceScorer(result: Pick<SalienceResult, 'saliences'>, kind: TaylorImportanceKind): LineScorer {
  const byName = new Map(result.saliences.map((s) => [linearWeightName(s.layer, s.module), s]));
  return async (layer: number, module: LinearModule) => {
    const s = byName.get(linearWeightName(layer, module));
    if (!s) throw new Error(`salienceScorer: no gradients were taken for layer ${layer} ${module}`);
    const k = SALIENCE_OF[kind];
    return { rows: Float64Array.from(s.rows[k]), cols: Float64Array.from(s.columns[k]) };
  };
}

/** Σ |W ⊙ G| of each layer (0 for layers not in the result). */
export function layerTaylorScores(config: ModelConfig, saliences: readonly ModuleSaliences[]): number[] {
  const scores = new Array<number>(config.numLayers).fill(0);
  for (const s of saliences) for (const v of s.rows.first) scores[s.layer] += v;
  return scores;
}

/** The scoring run's batches (its settings' steps, same order and seed), each as the run trains on it. */
export function scoringBatches(data: ScoringData, steps: number, s: { batchSize: number; seed: number; shuffle: boolean }): TokenBatch[] {
  const next = data.kind === 'batches' ? data.batch : trainingBatches(data.examples, s, data.padTokenId, 0);
  return Array.from({ length: steps }, (_, i) => next(i));
}

export const taylor: ImportanceMethod = {
  id: 'taylor',
  title: 'Taylor (Σ|W·∂L/∂W|)',
  reference: "LLM-Pruner's first-order term (arXiv 2305.11627) summed over a layer's linear weights",
  source: 'gradients',
  async compute(ctx) {
    if (!ctx.gpu || !ctx.data) {
      throw new GradPruneError('input', "The 'taylor' method takes gradients on the task data: it needs the GPU and the scoring data.", { subject: 'taylor', hint: 'Pass gpu and data (the scoring run\'s).' });
    }
    const s = resolveScoringSettings(ctx.settings);
    const batches = scoringBatches(ctx.data, s.steps, s);
    const r = await frozenWeightSaliences(ctx.gpu, ctx.model, {
      batches, batchSize: s.batchSize, seqLen: s.seqLen, weights: s.weights, second: false, memoryBudget: s.maxGpuMemory ?? undefined, signal: ctx.signal,
    });
    return {
      method: 'taylor',
      layerScores: layerTaylorScores(ctx.model.config, r.saliences),
      cost: {
        seconds: r.seconds,
        gpuBytes: r.peakGpuBytes, // its own copy of the weights included
        hostBytes: r.saliences.reduce((n, m) => n + 4 * 3 * (m.rows.first.length + m.columns.first.length), 0),
        note: `${r.passes.length} pass${r.passes.length === 1 ? '' : 'es'} over ${batches.length} batches (forward + backward), gradient sums of ${r.passes[0].length} layer${r.passes[0].length === 1 ? '' : 's'} at a time (${formatBytes(r.gradientBytes)} f32); GPU bytes include the weights, loaded for this pass`,
      },
    };
  },
};
