// The engine's models as ScoringModels / NextTokenModels: the GPU model (GpuModel, fixed (B, T) buffers; for
// generation, its KV-cache Generator) and the CPU reference (tests, tiny models, `--cpu`).

import { sliceRows } from '../data/batch';
import type { TokenBatch } from '../data/types';
import { GradPruneError } from '../errors';
import { requestGpu, type Gpu } from '../gpu/device';
import type { ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import type { LoraAdapter, LoraConfig } from '../nn/lora';
import { Generator } from '../nn/generate';
import { GpuModel, type WeightsSource } from '../nn/model';
import type { MemoryPlan } from '../nn/memory';
import { resolveWeightStorage, type ResolvedPrecision, type WeightPrecision, type WeightStorage } from '../nn/precision';
import { loraState, ReferenceModel } from '../nn/reference/model';
import { loadModelWeights } from '../nn/reference/weights';
import type { NextTokenModel } from './generation';
import { tokenLogProbsFromLogits, type MaskedBatch, type ScoringModel } from './scoring';

/**
 * The GPU model as a ScoringModel: rows go through it gpu.B at a time, padded to gpu.T. Log-probabilities are the
 * fused cross-entropy's per-position losses with every position counted, so only (B, T) numbers leave the device,
 * never the (B, T, V) logits; the held-out loss uses the fused reduction itself.
 */
export function gpuScoringModel(gpu: GpuModel): ScoringModel {
  const chunks = (batch: TokenBatch) =>
    Array.from({ length: Math.ceil(batch.B / gpu.B) }, (_, i) => {
      const [from, to] = [i * gpu.B, Math.min(batch.B, (i + 1) * gpu.B)];
      return { from, to, rows: sliceRows(batch, from, to) };
    });
  return {
    maxLength: gpu.T,
    async tokenLogProbs(batch) {
      const { B, T, inputIds } = batch;
      // Every position t ≥ 1 is a target, so position t-1's loss is −log p(ids[t]); the batch's own padding (past
      // each row's end, never read) is the only padding there is, so any pad id past T will do.
      const targets = Int32Array.from({ length: B * T }, (_, i) => (i % T > 0 ? 1 : 0)); // (B, T)
      const out = new Float32Array(B * Math.max(0, T - 1)); // (B, T-1)
      for (const { from, to, rows } of chunks({ B, T, inputIds, lossMask: targets, padTokenId: 0 })) {
        await gpu.run(rows);
        const losses = await gpu.readTokenLosses(); // (gpu.B, gpu.T)
        for (let b = 0; b < to - from; b++) {
          for (let t = 0; t + 1 < T; t++) out[(from + b) * (T - 1) + t] = -losses[b * gpu.T + t];
        }
      }
      return out;
    },
    async maskedLoss(batch: MaskedBatch) {
      let sum = 0;
      let count = 0;
      for (const { rows } of chunks(batch)) {
        const r = await gpu.run(rows);
        if (r.count > 0) sum += r.loss * r.count;
        count += r.count;
      }
      return { loss: count > 0 ? sum / count : 0, count };
    },
  };
}

/**
 * The CPU reference as a ScoringModel and a NextTokenModel (float32, slow: tests and tiny models). Next-token logits
 * recompute the whole sequence: the plain reference that the GPU's KV cache is checked against.
 */
export function referenceScoringModel(ref: ReferenceModel, maxLength: number): ScoringModel & NextTokenModel {
  const V = ref.w.config.vocabSize;
  return {
    maxLength,
    vocabSize: V,
    async tokenLogProbs(batch) {
      const { logits } = ref.forward(batch.inputIds, batch.B, batch.T);
      return tokenLogProbsFromLogits(logits, batch.inputIds, batch.B, batch.T, V);
    },
    async nextTokenLogits(ids) {
      const { logits } = ref.forward(Int32Array.from(ids), 1, ids.length);
      return logits.slice((ids.length - 1) * V, ids.length * V);
    },
  };
}

export type EngineKind = 'gpu' | 'cpu';

/** The CPU reference reads every dtype into float32. */
const CPU_PRECISION: ResolvedPrecision = { storage: 'f32', reason: 'the CPU reference computes in float32' };

export interface EvalEngine {
  kind: EngineKind;
  /** The weight storage in use and why (the CLI prints it). */
  precision: ResolvedPrecision;
  model: ScoringModel;
  /** The GPU model behind it (for cost measurements), null on the CPU. */
  gpu: GpuModel | null;
  destroy(): void;
}

type EngineLora = { config: LoraConfig; adapters: readonly LoraAdapter[] } | null;

export interface EvalEngineOptions {
  kind: EngineKind;
  /** Rows per model call (GPU: the model's B). */
  batchSize: number;
  /** Tokens per row (GPU: the model's T; CPU: the longest sequence accepted). */
  seqLen: number;
  /** A LoRA adapter applied on top of the weights (e.g. readPeftAdapter's). */
  lora?: EngineLora;
  /** Weight storage on the GPU (default 'auto': f16 where the adapter has shader-f16). The CPU is always f32. */
  weights?: WeightPrecision;
  /** GPU memory budget in bytes (`--max-gpu-memory`; default what the adapter allows): over it, the layers stream. */
  maxGpuMemory?: number | null;
}

/** The CPU reference has no f16 storage: an explicit 'f16' there is a mistake worth saying. */
function checkCpuPrecision(weights: WeightPrecision | undefined): void {
  if (weights === 'f16') {
    throw new GradPruneError('input', 'The CPU reference computes in float32 and cannot store weights as f16.', {
      subject: 'precision',
      hint: 'Leave the precision at auto (or f32) with the CPU reference, or use the GPU.',
    });
  }
}

async function loadReference(config: ModelConfig, store: TensorStore, lora: EngineLora, maxLength: number): Promise<ReferenceModel> {
  const weights = await loadModelWeights(config, store);
  return new ReferenceModel(weights, lora ? loraState(lora.adapters, lora.config.rank, lora.config.alpha) : null, maxLength);
}


/** The memory plan of an evaluation job (no training buffers), as GpuModel.create checks it. */
export const evalJobPlan = (storage: WeightStorage, batchSize: number, seqLen: number, lora: LoraConfig | null): MemoryPlan => ({
  batchSize,
  seqLen,
  lora,
  weights: storage,
  checkpointing: true,
  training: false,
});

export interface EvalGpuModelOptions {
  batchSize: number;
  seqLen: number;
  lora?: EngineLora;
  weights?: WeightPrecision;
  /** GPU memory budget in bytes (default what the adapter allows): over it, the layers stream. */
  maxGpuMemory?: number | null;
  /** Shared weights (e.g. the worker's cache); without, the model loads weights it owns. */
  source?: WeightsSource;
}

/** The GPU model for evaluation (no training buffers) on `gpu`, with the weight storage it uses and why. */
export async function loadEvalGpuModel(
  gpu: Gpu,
  config: ModelConfig,
  store: TensorStore,
  opts: EvalGpuModelOptions,
): Promise<{ model: GpuModel; precision: ResolvedPrecision }> {
  const lora = opts.lora ?? null;
  const precision = resolveWeightStorage(opts.weights ?? 'auto', gpu.adapter);
  const job = {
    batchSize: opts.batchSize,
    seqLen: opts.seqLen,
    lora: lora?.config ?? null,
    adapters: lora?.adapters,
    training: false,
    // Forward only: nothing reads a layer's activations after the next layer ran, so every layer shares one set
    // (an 8B model at 4 × 256 tokens needs ~0.3 GB of activations instead of ~10 GB; the results are the same).
    checkpointing: true,
    memoryBudget: opts.maxGpuMemory ?? undefined,
  };
  if (opts.source) {
    const weights = await opts.source(precision.storage, evalJobPlan(precision.storage, opts.batchSize, opts.seqLen, job.lora));
    if (weights.config !== config || weights.storage !== precision.storage) {
      throw new GradPruneError('input', `The shared weights (${weights.storage}) are not this model's in ${precision.storage}.`, { subject: 'weights' });
    }
    return { model: GpuModel.create(weights, job), precision };
  }
  const model = await GpuModel.load(gpu, config, store, { ...job, weights: precision.storage });
  return { model, precision };
}

async function loadGpuModel(
  config: ModelConfig,
  store: TensorStore,
  lora: EngineLora,
  batchSize: number,
  seqLen: number,
  weights: WeightPrecision = 'auto',
  maxGpuMemory: number | null = null,
): Promise<{ model: GpuModel; precision: ResolvedPrecision }> {
  const gpu = await requestGpu();
  try {
    return await loadEvalGpuModel(gpu, config, store, { batchSize, seqLen, lora, weights, maxGpuMemory });
  } catch (e) {
    gpu.device.destroy();
    throw e;
  }
}

/** Load a checkpoint's weights into the GPU engine (or the CPU reference) for evaluation. */
export async function loadEvalEngine(config: ModelConfig, store: TensorStore, opts: EvalEngineOptions): Promise<EvalEngine> {
  const lora = opts.lora ?? null;
  if (opts.kind === 'cpu') {
    checkCpuPrecision(opts.weights);
    return { kind: 'cpu', precision: CPU_PRECISION, model: referenceScoringModel(await loadReference(config, store, lora, opts.seqLen), opts.seqLen), gpu: null, destroy() {} };
  }
  const { model, precision } = await loadGpuModel(config, store, lora, opts.batchSize, opts.seqLen, opts.weights, opts.maxGpuMemory);
  return {
    kind: 'gpu',
    precision,
    model: gpuScoringModel(model),
    gpu: model,
    destroy() {
      model.destroy();
      model.gpu.device.destroy();
    },
  };
}

export interface GenerationEngine {
  kind: EngineKind;
  /** The weight storage in use and why (the CLI prints it). */
  precision: ResolvedPrecision;
  model: NextTokenModel;
  destroy(): void;
}

/**
 * Load a checkpoint for generation of sequences up to `maxLength` tokens (prompt and new tokens): on the GPU a
 * KV-cache Generator over a model with one-token buffers, on the CPU the reference.
 */
export async function loadGenerationEngine(
  config: ModelConfig,
  store: TensorStore,
  opts: { kind: EngineKind; maxLength: number; lora?: EngineLora; weights?: WeightPrecision; maxGpuMemory?: number | null },
): Promise<GenerationEngine> {
  const lora = opts.lora ?? null;
  if (opts.kind === 'cpu') {
    checkCpuPrecision(opts.weights);
    return { kind: 'cpu', precision: CPU_PRECISION, model: referenceScoringModel(await loadReference(config, store, lora, opts.maxLength), opts.maxLength), destroy() {} };
  }
  const { model, precision } = await loadGpuModel(config, store, lora, 1, 1, opts.weights, opts.maxGpuMemory);
  let generator: Generator;
  try {
    generator = new Generator(model, opts.maxLength);
  } catch (e) {
    model.destroy();
    model.gpu.device.destroy();
    throw e;
  }
  return {
    kind: 'gpu',
    precision,
    model: generator,
    destroy() {
      generator.destroy();
      model.destroy();
      model.gpu.device.destroy();
    },
  };
}
