// GPU memory of a training (or inference) job, estimated from the config before anything is allocated, and the
// check that refuses a job that does not fit, saying what it needs and what the adapter allows.
// The estimate counts the same buffers GpuModel allocates (model.test compares the two); kernel uniforms and
// the optimizer's few partial sums are not counted.

import { GradPruneError } from '../errors';
import type { AdapterSummary } from '../gpu/device';
import { LINEAR_MODULES, linearShape, type ModelConfig } from '../model/config';
import { formatBytes } from '../format';
import { WEIGHT_BUDGET_BUFFERS } from '../model/summary';
import type { LoraConfig } from './lora';
import type { WeightStorage } from './precision';
import { DEFAULT_HOST_CACHE_BYTES, type Residency } from './weights';
import { lossHeadBytes } from './loss-head';
import { planRowParts } from '../gpu/tensor';

export type ResidencyChoice = 'auto' | Residency;

export interface MemoryPlan {
  batchSize: number;
  seqLen: number;
  lora: LoraConfig | null;
  weights: WeightStorage;
  checkpointing: boolean;
  /** Gradients, optimizer moments and backward buffers. */
  training: boolean;
  /** Where the decoder layers' weights live (default resident). Streamed implies checkpointing. */
  residency?: Residency;
  /** The device's storage binding limit (tensor.ts bindingLimit): embedding and lm_head split into row parts within it. Default: no limit. */
  bindingBytes?: number;
  /** Rows per loss-head chunk, as the job sets it (default: the loss head's own choice). */
  lossChunkRows?: number;
  /** Streamed: host memory for layer weights (default DEFAULT_HOST_CACHE_BYTES); layers past it are re-read from the files. */
  hostCacheBytes?: number;
}

export interface MemoryEstimate {
  residency: Residency;
  /** GPU bytes of the weights (streamed: embedding, lm_head, final norm and two layer slots). */
  weights: number;
  /** Adapter values, gradients and AdamW moments. */
  adapters: number;
  /** Forward activations kept for the backward pass (all layers, or one under checkpointing) and the logits. */
  activations: number;
  /** Backward scratch (the gradient of the logits dominates for large vocabularies). */
  backward: number;
  total: number;
  /** The largest single buffer, which must fit one storage binding. */
  largest: { name: string; bytes: number };
  /** Host memory for streamed layer weights (0 when resident). */
  hostBytes: number;
  /** Streamed layers re-read from the checkpoint files at each upload (those past the host memory budget). */
  rereadLayers: number;
  /** Bytes uploaded to the GPU per step once running (streamed: per training step, or per forward pass without training). */
  uploadBytesPerStep: number;
}

/** A buffer's size as createTensor allocates it: rounded up to 4 bytes, at least 4. */
const buf = (numel: number, bytesPerElement = 4) => Math.max(4, Math.ceil((numel * bytesPerElement) / 4) * 4);

type Noter = (name: string, bytes: number) => number;

/** GPU bytes of one decoder layer's weights: matrices in the storage dtype, norms and biases f32. */
function layerWeightBytes(c: ModelConfig, storage: WeightStorage, note: Noter = (_, b) => b): number {
  const wb = storage === 'f16' ? 2 : 4;
  let bytes = 2 * buf(c.hiddenSize) + (c.qkNorm ? 2 * buf(c.headDim) : 0);
  for (const m of LINEAR_MODULES) {
    const [out, inp] = linearShape(c, m);
    bytes += note(`${m}.weight`, buf(out * inp, wb));
    if (c.bias[m]) bytes += buf(out);
  }
  return bytes;
}

/**
 * Layer uploads per step once running, with two slots: a training step's forward finds layers 0 and 1 still in
 * the slots from the last backward, and its backward finds L-1 and L-2 from the forward; plain forwards upload all.
 */
export function streamedUploadsPerStep(L: number, training: boolean): number {
  return training ? 2 * Math.max(0, L - 2) : L <= 2 ? 0 : L;
}

export function estimateMemory(c: ModelConfig, plan: MemoryPlan): MemoryEstimate {
  const residency = plan.residency ?? 'resident';
  const streamed = residency === 'streamed';
  const { batchSize: B, seqLen: T } = plan;
  const N = B * T;
  const C = c.hiddenSize, L = c.numLayers, V = c.vocabSize, F = c.intermediateSize, HD = c.headDim;
  const Q = c.numHeads * HD, KV = c.numKvHeads * HD;
  const wb = plan.weights === 'f16' ? 2 : 4;
  let largest = { name: '', bytes: 0 };
  const note: Noter = (name, bytes) => {
    if (bytes > largest.bytes) largest = { name, bytes };
    return bytes;
  };

  // The embedding and lm_head as row parts within one binding each (tensor.ts planRowParts).
  const parts = planRowParts(V, C, wb, plan.bindingBytes ?? Infinity);
  const matrix = (name: string) => parts.reduce((s, p) => s + note(parts.length > 1 ? `${name} (one of ${parts.length} parts)` : name, buf(p.rows * C, wb)), 0);
  let weights = matrix('model.embed_tokens.weight');
  if (!c.tiedEmbeddings) weights += matrix('lm_head.weight');
  weights += buf(C);
  const layer = layerWeightBytes(c, plan.weights, note);
  weights += (streamed ? Math.min(2, L) : L) * layer;

  const r = plan.lora?.rank ?? 0;
  const modules = plan.lora ? LINEAR_MODULES.filter((m) => plan.lora!.modules.includes(m)) : [];
  let adapters = 0;
  for (const m of modules) {
    const [out, inp] = linearShape(c, m);
    adapters += L * 4 * (buf(r * inp) + buf(out * r)); // value, gradient, two moments
  }

  const qkNorm = c.qkNorm ? buf(N * Q) + buf(N * KV) + buf(N * c.numHeads) + buf(N * c.numKvHeads) : 0; // pre-norm q, k and their rstd
  note('activation (B, T, intermediate)', buf(N * F)); // the largest activation buffer, which must fit one binding too
  const perLayer = 3 * buf(N * C) + 2 * buf(N) + 2 * buf(N * Q) + 2 * buf(N * KV) + buf(N * c.numHeads) + 3 * buf(N * F) + modules.length * buf(N * r) + qkNorm;
  const layersKept = plan.checkpointing || streamed ? 1 : L;
  // lm_head + cross-entropy in row chunks: one logits chunk (and one dlogits chunk when training), never (N, V).
  const lossHead = note('loss head chunks', lossHeadBytes(N, V, C, { partRows: Math.max(...parts.map((p) => p.rows)), training: plan.training, bindingBytes: plan.bindingBytes, chunkRows: plan.lossChunkRows }));
  const activations =
    2 * buf(N, 4) + lossHead + buf(2) + // ids, loss mask (i32), loss head scratch, loss stats
    2 * buf(T * HD) + // rope tables
    (L + 1) * buf(N * C) + // residual stream at each layer boundary
    layersKept * perLayer +
    buf(N * Q) + buf(N * KV) + buf(N * C) + // q, k before RoPE; projection scratch
    buf(N * C) + 3 * buf(N); // final norm out and rstd; per-position losses and their lse

  const backward = plan.training
    ? 2 * buf(N * C) + 3 * buf(N * Q) + 3 * buf(N * KV) + buf(N * c.numHeads) + 3 * buf(N * F) + (r > 0 ? buf(N * r) : 0) +
      (c.qkNorm ? buf(N * Q) + buf(N * KV) : 0)
    : 0;
  const cachedLayers = streamed ? Math.min(L, Math.floor((plan.hostCacheBytes ?? DEFAULT_HOST_CACHE_BYTES) / layer)) : 0;
  const hostBytes = cachedLayers * layer;
  const rereadLayers = streamed ? L - cachedLayers : 0;
  const uploadBytesPerStep = streamed ? streamedUploadsPerStep(L, plan.training) * layer : 0;
  return { residency, weights, adapters, activations, backward, total: weights + adapters + activations + backward, largest, hostBytes, rereadLayers, uploadBytesPerStep };
}

/** The default GPU budget: WEIGHT_BUDGET_BUFFERS × maxBufferSize, as the model summary assumes (WebGPU does not reveal total GPU memory). */
export const defaultGpuBudget = (adapter: Pick<AdapterSummary, 'maxBufferSize'>): number => WEIGHT_BUDGET_BUFFERS * adapter.maxBufferSize;

/**
 * Where the weights of a job go: resident when weights and job fit the budget, else streamed when that fits
 * (checkpointing forced), else the refusal (GradPruneError 'memory') of the smallest way, before any allocation.
 * A forced choice is checked as it is.
 */
export function planResidency(
  c: ModelConfig,
  plan: MemoryPlan,
  adapter: AdapterSummary,
  choice: ResidencyChoice = 'auto',
  availableBytes = defaultGpuBudget(adapter),
): { residency: Residency; estimate: MemoryEstimate } {
  const bindingBytes = plan.bindingBytes ?? Math.min(adapter.maxStorageBufferBindingSize, adapter.maxBufferSize);
  const estimateOf = (residency: Residency) => estimateMemory(c, { ...plan, bindingBytes, residency, checkpointing: plan.checkpointing || residency === 'streamed' });
  if (choice !== 'auto') {
    const estimate = estimateOf(choice);
    checkMemory(estimate, adapter, availableBytes);
    return { residency: choice, estimate };
  }
  const resident = estimateOf('resident');
  try {
    checkMemory(resident, adapter, availableBytes);
    return { residency: 'resident', estimate: resident };
  } catch (e) {
    if (!(e instanceof GradPruneError) || c.numLayers <= 2) throw e;
  }
  const streamed = estimateOf('streamed');
  checkMemory(streamed, adapter, availableBytes);
  return { residency: 'streamed', estimate: streamed };
}

/** Refuse a job on weights already on the device when weights and job together exceed the budget. */
export function checkJobMemory(w: { config: ModelConfig; gpu: { adapter: AdapterSummary }; allocatedBytes: number; residency: Residency; storage: WeightStorage }, plan: MemoryPlan, availableBytes?: number): void {
  const adapter = w.gpu.adapter;
  const bindingBytes = plan.bindingBytes ?? Math.min(adapter.maxStorageBufferBindingSize, adapter.maxBufferSize);
  const e = estimateMemory(w.config, { ...plan, bindingBytes, weights: w.storage, residency: w.residency });
  checkMemory({ ...e, weights: w.allocatedBytes, total: e.total - e.weights + w.allocatedBytes }, w.gpu.adapter, availableBytes);
}

/**
 * Refuse a job before any allocation: every buffer must fit one storage binding, and the total must fit the
 * budget (`availableBytes`, default WEIGHT_BUDGET_BUFFERS × maxBufferSize, as the model summary assumes:
 * WebGPU does not reveal total GPU memory).
 */
export function checkMemory(e: MemoryEstimate, adapter: AdapterSummary, availableBytes = defaultGpuBudget(adapter)): void {
  const binding = Math.min(adapter.maxStorageBufferBindingSize, adapter.maxBufferSize);
  const parts = memoryParts(e);
  if (e.largest.bytes > binding) {
    throw new GradPruneError('memory', `The buffer ${e.largest.name} needs ${formatBytes(e.largest.bytes)}, over this GPU's largest binding (${formatBytes(binding)}).`, {
      subject: e.largest.name,
      hint: e.largest.name.includes('loss head') || e.largest.name.startsWith('grad') || !e.largest.name.includes('weight') ? 'Use a smaller batch or a shorter sequence length.' : 'Use f16 weights or a smaller model.',
    });
  }
  if (e.total > availableBytes) {
    const how = e.residency === 'streamed' ? ' even with the weights streamed layer by layer' : '';
    throw new GradPruneError('memory', `This job needs ${formatBytes(e.total)} of GPU memory${how} (${parts}), more than the ${formatBytes(availableBytes)} available.`, {
      subject: 'memory',
      hint: 'Use a smaller batch, a shorter sequence, gradient checkpointing, a lower LoRA rank, or f16 weights.',
    });
  }
}

const memoryParts = (e: MemoryEstimate): string =>
  `weights ${formatBytes(e.weights)}, LoRA state ${formatBytes(e.adapters)}, activations ${formatBytes(e.activations)}, backward ${formatBytes(e.backward)}`;

export interface JobFit {
  /** The job runs on this adapter within the budget: with its weights resident or streamed. */
  fits: boolean;
  residency: Residency | null;
  estimate: MemoryEstimate | null;
  limitBytes: number;
  /** Why not, when it does not fit. */
  reason: string | null;
}

/** Whether and how a job runs (planResidency, without throwing): for `inspect`'s fit report and the studio. */
export function jobFit(c: ModelConfig, plan: MemoryPlan, adapter: AdapterSummary, availableBytes = defaultGpuBudget(adapter)): JobFit {
  try {
    const { residency, estimate } = planResidency(c, plan, adapter, 'auto', availableBytes);
    return { fits: true, residency, estimate, limitBytes: availableBytes, reason: null };
  } catch (e) {
    if (!(e instanceof GradPruneError)) throw e;
    return { fits: false, residency: null, estimate: null, limitBytes: availableBytes, reason: e.message };
  }
}

/** The estimate as one line for a terminal, shown before a run starts. */
export function memoryLine(e: MemoryEstimate, adapter: AdapterSummary, availableBytes = defaultGpuBudget(adapter)): string {
  const mode = e.residency === 'streamed'
    ? `weights streamed layer by layer: ${formatBytes(e.hostBytes)} of host memory${e.rereadLayers ? ` (${e.rereadLayers} layers re-read from the files at each upload)` : ''}, ${formatBytes(e.uploadBytesPerStep)} uploaded per step`
    : 'weights resident';
  return `memory ${formatBytes(e.total)} of GPU memory (${memoryParts(e)}); ${formatBytes(availableBytes)} allowed; ${mode}`;
}
