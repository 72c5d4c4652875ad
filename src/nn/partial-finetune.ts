// Partial-layer fine-tuning ("Reassessing Layer Pruning in LLMs", arXiv 2411.15558, the recovery it finds best):
// full fine-tuning of lm_head and the last k decoder layers' seven linear weights (Qwen2: their q/k/v biases too),
// AdamW on the weights themselves; everything else frozen — the embedding, the final norm and every RMSNorm
// (the trained layers' norms included: the paper trains the layers' weights, the norms are 2·C numbers per layer
// and stay as they are). Tied embeddings: the lm_head is untied (weight-grads.ts LmHeadGrad), the input embedding
// stays frozen and the export writes lm_head.weight apart.
// One step: forward → backward down to the lowest trained layer (dW of the trained layers, dlogitsᵀ·h of lm_head)
// → global-norm clip → AdamW in place on the GPU weights → zero the gradients, one submit.
// The job changes the weights it runs on: give it weights of its own (GpuModel.load), f32 and resident.

import type { TokenBatch } from '../data/types';
import { GradPruneError } from '../errors';
import { createReadbackBuffer, createTensor, MAP_READ, readback, type Tensor } from '../gpu/tensor';
import { LINEAR_MODULES, linearShape, linearWeightName, type ModelConfig } from '../model/config';
import { formatBytes } from '../format';
import { fill } from './kernels';
import { defaultGpuBudget, planResidency, type MemoryEstimate } from './memory';
import { GpuModel, type JobOptions } from './model';
import { ParamOptimizer, type OptimizerOptions, type TrainedTensor } from './optimizer';
import { TrainingDiverged, type StepResult } from './trainer';

/** The trained layers: the last k of the model's (validated: 1 ≤ k ≤ numLayers). */
export function partialLayers(c: ModelConfig, k: number): number[] {
  if (!Number.isInteger(k) || k < 1 || k > c.numLayers) {
    throw new GradPruneError('input', `--last-layers must be an integer from 1 to the model's ${c.numLayers} layers (got ${k}).`, {
      subject: '--last-layers',
      hint: 'The paper trains the last one to a few layers; try 1 or 2.',
    });
  }
  return Array.from({ length: k }, (_, i) => c.numLayers - k + i);
}

/** What training lm_head and the last k layers holds on the GPU beside the job's activations (f32). */
export interface PartialMemory {
  /** Trained parameters: k layers' linear weights and biases, and lm_head (V·C). */
  params: number;
  /** The trained weights themselves (4·params): part of the model's weights, except the untied lm_head copy. */
  weightBytes: number;
  gradBytes: number;
  /** AdamW's two moments. */
  adamBytes: number;
  /** With tied embeddings, the untied lm_head copy (4·V·C; counted in weightBytes too); else 0. */
  untiedCopyBytes: number;
  /** weights + grads + moments: 16·params. */
  totalBytes: number;
  /** What the job adds to the model's own weights: grads + moments + the untied copy. */
  extraBytes: number;
}

export function partialFinetuneMemory(c: ModelConfig, k: number): PartialMemory {
  const layers = partialLayers(c, k).length;
  let perLayer = 0;
  for (const m of LINEAR_MODULES) {
    const [out, inp] = linearShape(c, m);
    perLayer += out * inp + (c.bias[m] ? out : 0);
  }
  const params = layers * perLayer + c.vocabSize * c.hiddenSize;
  const untiedCopyBytes = c.tiedEmbeddings ? 4 * c.vocabSize * c.hiddenSize : 0;
  const weightBytes = 4 * params, gradBytes = 4 * params, adamBytes = 8 * params;
  return { params, weightBytes, gradBytes, adamBytes, untiedCopyBytes, totalBytes: weightBytes + gradBytes + adamBytes, extraBytes: gradBytes + adamBytes + untiedCopyBytes };
}

/** The job's own sizes: batch rows, tokens per row, and the layer-checkpointing choice. */
export interface PartialJobShape {
  batchSize: number;
  seqLen: number;
  checkpointing: boolean;
}

/**
 * Before anything is loaded: the job (f32 weights resident, activations and backward buffers, no adapters) plus the
 * trained tensors' gradients, moments and untied copy, against the budget. Throws GradPruneError('memory') when
 * they do not fit; returns both parts and their total.
 */
export function planPartialMemory(
  c: ModelConfig,
  k: number,
  shape: PartialJobShape,
  adapter: Parameters<typeof planResidency>[2],
  budget = defaultGpuBudget(adapter),
): { job: MemoryEstimate; trained: PartialMemory; total: number; budget: number } {
  const trained = partialFinetuneMemory(c, k);
  const room = budget - trained.extraBytes;
  if (room <= 0) {
    throw new GradPruneError('memory', `Training lm_head and the last ${k} layers needs ${formatBytes(trained.extraBytes)} for gradients and AdamW moments alone, over the ${formatBytes(budget)} allowed.`, {
      subject: '--last-layers',
      hint: 'Train fewer layers (--last-layers), or allow more GPU memory (--max-gpu-memory).',
    });
  }
  const { estimate: job } = planResidency(c, { ...shape, lora: null, weights: 'f32', training: true }, adapter, 'resident', room);
  return { job, trained, total: job.total + trained.extraBytes, budget };
}

/** "memory 12 MiB of GPU memory (job 9 MiB: f32 weights resident, activations; trained 78,848 parameters: …); 8 GiB allowed" */
export function partialMemoryLine(p: ReturnType<typeof planPartialMemory>): string {
  const t = p.trained;
  const copy = t.untiedCopyBytes ? ` + untied lm_head copy ${formatBytes(t.untiedCopyBytes)}` : '';
  return (
    `memory ${formatBytes(p.total)} of GPU memory (model f32 resident + activations ${formatBytes(p.job.total)}; ` +
    `${t.params} trained parameters: grads ${formatBytes(t.gradBytes)} + AdamW moments ${formatBytes(t.adamBytes)}${copy}); ${formatBytes(p.budget)} allowed`
  );
}

/** The job options of a partial fine-tuning job (set beside batch size, sequence length and memory budget). */
export const partialJobOptions = (c: ModelConfig, k: number): Pick<JobOptions, 'lora' | 'training' | 'weightGrads' | 'trainLmHead'> => ({
  lora: null,
  training: true,
  weightGrads: { layers: partialLayers(c, k), second: false },
  trainLmHead: true,
});

/** A trained tensor by its checkpoint name. */
interface Trained extends TrainedTensor {
  name: string;
}

export class PartialTrainer {
  readonly optimizer: ParamOptimizer;
  step = 0;
  private readonly trained: Trained[] = [];
  private readonly owned: Tensor[] = [];
  private readonly zeroCalls;
  private readonly staging: GPUBuffer; // [loss, count, norm, clip factor]

  constructor(readonly model: GpuModel, opts: OptimizerOptions) {
    if (!model.lmHeadGrad || model.frozenGrads.size === 0 || model.lora) {
      throw new Error('PartialTrainer needs a job with partialJobOptions (weight gradients of the trained layers, trainLmHead, no LoRA).');
    }
    if (model.weightStorage !== 'f32' || model.weights.streamed) {
      throw new GradPruneError('memory', 'Partial-layer fine-tuning updates the weights in place: they must be f32 and resident on the GPU.', {
        subject: 'weights',
        hint: 'Load the model with f32 weights, resident (a smaller batch or sequence leaves room for them).',
      });
    }
    const device = model.gpu.device;
    const moments = (name: string, like: Tensor) => {
      const t = (what: string) => {
        const x = createTensor(device, `${name}.adam_${what}`, like.shape); // same shape as the parameter
        this.owned.push(x);
        return x;
      };
      return { m: t('m'), v: t('v') };
    };
    for (const g of model.frozenGrads.values()) {
      const p = model.weights.layer(g.layer).linear[g.module];
      const name = linearWeightName(g.layer, g.module);
      this.trained.push({ name, param: p.W, grad: g.first, ...moments(name, p.W) });
      if (p.b && g.firstBias) this.trained.push({ name: name.replace(/\.weight$/, '.bias'), param: p.b, grad: g.firstBias, ...moments(`${name}.bias`, p.b) });
    }
    const head = model.lmHeadGrad;
    head.parts.forEach((part, i) => this.trained.push({ name: `lm_head.weight#${i}`, param: part.tensor, grad: head.grads[i], ...moments(`lm_head.${i}`, part.tensor) }));
    for (const t of this.trained) {
      if (t.param.dtype !== 'f32') throw new Error(`PartialTrainer: ${t.name} is ${t.param.dtype}, not f32`);
    }
    this.optimizer = new ParamOptimizer(model.kernels, this.trained, opts);
    this.zeroCalls = this.trained.flatMap((t) => fill(model.kernels, t.grad));
    this.staging = createReadbackBuffer(device, 'partial.readback', 16);
  }

  /**
   * One step on this batch: loss before the update, lr, pre-clip gradient norm. The weights are resident, so the
   * step is one submit and `stopRequested` (the step loop's) never finds a point to stop inside it.
   */
  async trainStep(batch: TokenBatch): Promise<StepResult>;
  async trainStep(batch: TokenBatch, stopRequested?: () => boolean): Promise<StepResult | null>;
  async trainStep(batch: TokenBatch, stopRequested?: () => boolean): Promise<StepResult | null> {
    const { model, optimizer, step } = this;
    model.setBatch(batch);
    const lr = optimizer.prepare(step);
    const completed = await model.submitPasses(true, (encoder) => {
      const pass = encoder.beginComputePass({ label: 'partial.clip+update' });
      GpuModel.encode(pass, [...optimizer.clipCalls, ...optimizer.updateCalls, ...this.zeroCalls]);
      pass.end();
      encoder.copyBufferToBuffer(model.stats.buffer, 0, this.staging, 0, 8);
      encoder.copyBufferToBuffer(optimizer.norm.buffer, 0, this.staging, 8, 8);
    }, stopRequested);
    if (!completed) return null;
    await this.staging.mapAsync(MAP_READ);
    const [loss, tokens, gradNorm] = new Float32Array(this.staging.getMappedRange().slice(0));
    this.staging.unmap();
    model.gpu.throwIfFailed();
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      throw new TrainingDiverged(step, lr, null, `Partial fine-tuning diverged at step ${step}: the loss is ${loss}, the gradient norm ${gradNorm} (lr ${lr}).`);
    }
    this.step++;
    return { step, loss, lr, gradNorm, tokens };
  }

  /**
   * The trained tensors' values by checkpoint name (lm_head.weight whole, its parts joined): what replaces the
   * checkpoint's tensors in the export.
   */
  async readTrained(): Promise<Map<string, Float32Array>> {
    const device = this.model.gpu.device;
    const out = new Map<string, Float32Array>();
    const c = this.model.config;
    const head = new Float32Array(c.vocabSize * c.hiddenSize);
    for (const t of this.trained) {
      const values = await readback(device, t.param);
      const part = /^lm_head\.weight#(\d+)$/.exec(t.name);
      if (part) head.set(values, this.model.lmHeadGrad!.parts[Number(part[1])].rowStart * c.hiddenSize);
      else out.set(t.name, values);
    }
    out.set('lm_head.weight', head);
    return out;
  }

  destroy(): void {
    this.optimizer.destroy();
    for (const c of this.zeroCalls) c.destroy();
    for (const t of this.owned) t.buffer.destroy();
    this.staging.destroy();
  }
}
