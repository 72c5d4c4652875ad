// Gradients of the frozen linear weights (q, k, v, o, gate, up, down; Qwen2's q/k/v biases) of chosen layers,
// accumulated over batches during the backward pass: what Taylor importances need (gradprune/importance/taylor.ts),
// LoRA training does not. The backward of a chosen module adds its dW = doutᵀ·inp (linearBackward's dweight):
//   first-order only: straight into `first` (+=, never zeroed by the job: the sum over every batch run);
//   with second: into the per-batch `grad` (zeroed with the job's gradients), then first += grad, second += grad²
//   (taylorAccumulate), LLM-Pruner's acc_grad (the Fisher diagonal) from per-batch gradients.
// Memory: f32 of the chosen layers' linear weights, once (first) or three times (first, second, grad). All layers
// at once is the model's size in f32 (×3 with second): Llama-3-8B's 32 layers hold 6.98 B linear weights, 27.9 GB
// (83.7 GB with second), so there one layer (0.87 GB, 2.6 GB with second) or a few per pass, one pass over the
// batches each: weightGradBytes sizes a group, importance/taylor.ts chooses groups within the budget.
// ./weight-saliences.ts reduces the sums to what the importances read.

import type { KernelCall } from '../gpu/kernel';
import type { RowPart, Tensor } from '../gpu/tensor';
import { LINEAR_MODULES, linearShape, linearWeightName, type LinearModule, type ModelConfig } from '../model/config';
import { fill, taylorAccumulate, type KernelLib } from './kernels';
import type { ModelWeights } from './weights';

export interface WeightGradOptions {
  /** The decoder layers whose frozen linear weights get gradients. */
  layers: readonly number[];
  /** Also accumulate the squared per-batch gradients (LLM-Pruner's param_second / param_mix). */
  second: boolean;
}

/** One module's accumulators. */
export interface FrozenWeightGrad {
  layer: number;
  module: LinearModule;
  first: Tensor; // (out, in): Σ_batches dW
  second: Tensor | null; // (out, in): Σ_batches dW², with `second`
  grad: Tensor | null; // (out, in): this batch's dW (with `second`)
  firstBias: Tensor | null; // (out): Σ_batches db, where the module has a bias
  secondBias: Tensor | null; // (out)
  gradBias: Tensor | null; // (out)
}

type Alloc = (label: string, shape: readonly number[]) => Tensor;

/** GPU bytes of the accumulators for these layers (what allocWeightGrads allocates). */
export function weightGradBytes(c: ModelConfig, opts: WeightGradOptions): number {
  let perLayer = 0;
  for (const m of LINEAR_MODULES) {
    const [out, inp] = linearShape(c, m);
    perLayer += out * inp + (c.bias[m] ? out : 0);
  }
  return 4 * perLayer * opts.layers.length * (opts.second ? 3 : 1);
}

/** The accumulators of every chosen module, keyed by linearWeightName(layer, module). */
export function allocWeightGrads(c: ModelConfig, opts: WeightGradOptions, alloc: Alloc): Map<string, FrozenWeightGrad> {
  const out = new Map<string, FrozenWeightGrad>();
  for (const layer of new Set(opts.layers)) {
    if (!Number.isInteger(layer) || layer < 0 || layer >= c.numLayers) throw new Error(`weight gradients: layer ${layer} is not one of the model's 0..${c.numLayers - 1}`);
    for (const module of LINEAR_MODULES) {
      const name = linearWeightName(layer, module);
      const [o, i] = linearShape(c, module);
      const t = (what: string, shape: number[]) => alloc(`${name}.${what}`, shape);
      const bias = c.bias[module];
      out.set(name, {
        layer,
        module,
        first: t('grad_sum', [o, i]),
        second: opts.second ? t('grad_sq_sum', [o, i]) : null,
        grad: opts.second ? t('grad', [o, i]) : null,
        firstBias: bias ? t('bias_grad_sum', [o]) : null,
        secondBias: bias && opts.second ? t('bias_grad_sq_sum', [o]) : null,
        gradBias: bias && opts.second ? t('bias_grad', [o]) : null,
      });
    }
  }
  return out;
}

/** Where a module's backward writes dW and db: the per-batch buffers with `second`, else the sums. */
export const weightGradTargets = (g: FrozenWeightGrad): { dW: Tensor; db: Tensor | null } => ({ dW: g.grad ?? g.first, db: g.gradBias ?? g.firstBias });

/** After a module's backward: first += grad, second += grad² (nothing to do without `second`). */
export function weightGradAccumulate(k: KernelLib, g: FrozenWeightGrad): KernelCall[] {
  if (!g.grad || !g.second) return [];
  const calls = taylorAccumulate(k, g.first, g.second, g.grad);
  if (g.gradBias && g.firstBias && g.secondBias) calls.push(...taylorAccumulate(k, g.firstBias, g.secondBias, g.gradBias));
  return calls;
}

/** Zero the per-batch buffers (with the job's other gradients, before each backward). */
export const weightGradZero = (k: KernelLib, g: FrozenWeightGrad): KernelCall[] => [g.grad, g.gradBias].flatMap((t) => (t ? fill(k, t) : []));


/**
 * The lm_head as a job trains it (partial-layer fine-tuning): the parts the loss head binds and their dW (`+=`,
 * zeroed by whoever steps on them). Untied checkpoints: the weights' own lm_head parts, updated in place. Tied
 * embeddings: the lm_head is untied — a job-owned f32 copy of the embedding's parts, so the input embedding stays
 * as it is and the export writes lm_head.weight apart (tie_word_embeddings false).
 */
export interface LmHeadGrad {
  parts: RowPart[]; // (Vp, C) each, f32
  grads: Tensor[]; // (Vp, C) each: dW
  /** True when `parts` is a copy of the tied embedding. */
  untied: boolean;
}

/** GPU bytes allocLmHeadGrad allocates: dW, and with tied embeddings the untied copy. */
export const lmHeadGradBytes = (c: ModelConfig): number => 4 * c.vocabSize * c.hiddenSize * (c.tiedEmbeddings ? 2 : 1);

export function allocLmHeadGrad(weights: ModelWeights, alloc: Alloc): LmHeadGrad {
  if (weights.storage !== 'f32') throw new Error('Training the lm_head needs f32 weights (load them with weights: "f32").');
  const device = weights.gpu.device;
  const untied = weights.config.tiedEmbeddings;
  const parts = untied
    ? weights.lmHeadParts.map((p, i) => {
        const copy = alloc(`lm_head.untied.${i}`, p.tensor.shape);
        const encoder = device.createCommandEncoder({ label: 'lm_head.untie' });
        encoder.copyBufferToBuffer(p.tensor.buffer, p.tensor.offset, copy.buffer, 0, p.tensor.numel * 4);
        device.queue.submit([encoder.finish()]);
        return { tensor: copy, rowStart: p.rowStart };
      })
    : weights.lmHeadParts.map((p) => ({ ...p }));
  return { parts, grads: parts.map((p, i) => alloc(`lm_head.grad.${i}`, p.tensor.shape)), untied };
}
