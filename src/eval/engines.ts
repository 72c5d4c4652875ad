// The engine's models as ScoringModels / NextTokenModels: the GPU model (GpuModel, fixed (B, T) buffers) and the
// CPU reference (tests, tiny models).

import { GradPruneError } from '../errors';
import { requestGpu } from '../gpu/device';
import type { ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import type { LoraAdapter, LoraConfig } from '../nn/lora';
import { GpuModel } from '../nn/model';
import { loraState, ReferenceModel } from '../nn/reference/model';
import { loadModelWeights } from '../nn/reference/weights';
import type { NextTokenModel } from './generation';
import { tokenLogProbsFromLogits, type MaskedBatch, type ScoringModel, type TokenBatch } from './scoring';

/** The rows of a (B, T) row-major batch. */
function rowsOf(data: Int32Array, B: number, T: number): Int32Array[] {
  return Array.from({ length: B }, (_, b) => data.subarray(b * T, (b + 1) * T));
}

/** `count` f32 values from `offset` (in elements) of a storage buffer. */
async function readRange(device: GPUDevice, buffer: GPUBuffer, offset: number, count: number): Promise<Float32Array> {
  const staging = device.createBuffer({ label: 'eval.readRange', size: count * 4, usage: 0x01 | 0x08 }); // MAP_READ | COPY_DST (numeric: the globals exist only once WebGPU does)
  const encoder = device.createCommandEncoder({ label: 'eval.readRange' });
  encoder.copyBufferToBuffer(buffer, offset * 4, staging, 0, count * 4);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(0x0001); // GPUMapMode.READ
  const out = new Float32Array(staging.getMappedRange().slice(0));
  staging.unmap();
  staging.destroy();
  return out;
}

function checkFits(batch: TokenBatch, gpu: GpuModel): void {
  if (batch.T > gpu.T) {
    throw new GradPruneError('input', `A batch of ${batch.T} tokens per row does not fit the GPU model, which was set up for ${gpu.T}.`, {
      subject: 'seqLen',
      hint: 'Load the model with a longer sequence length, or score shorter sequences.',
    });
  }
}

/**
 * The GPU model as a ScoringModel: rows go through it gpu.B at a time, padded to gpu.T. Log-probabilities are the
 * fused cross-entropy's per-position losses with every position counted, so only (B, T) numbers leave the device,
 * never the (B, T, V) logits; the held-out loss uses the fused reduction itself.
 */
export function gpuScoringModel(gpu: GpuModel): ScoringModel & NextTokenModel {
  const V = gpu.config.vocabSize;
  const chunks = (B: number) => Array.from({ length: Math.ceil(B / gpu.B) }, (_, i) => [i * gpu.B, Math.min(B, (i + 1) * gpu.B)] as const);
  return {
    maxLength: gpu.T,
    vocabSize: V,
    async tokenLogProbs(batch) {
      checkFits(batch, gpu);
      const { B, T, inputIds } = batch;
      const out = new Float32Array(B * Math.max(0, T - 1)); // (B, T-1)
      for (const [from, to] of chunks(B)) {
        const ids = rowsOf(inputIds.subarray(from * T, to * T), to - from, T);
        // Every position t ≥ 1 is a target, so position t-1's loss is −log p(ids[t]).
        await gpu.run({ ids, lossMask: ids.map((r) => Int32Array.from(r, (_, t) => (t > 0 ? 1 : 0))) });
        const losses = await gpu.readTokenLosses(); // (gpu.B, gpu.T)
        for (let b = 0; b < to - from; b++) {
          for (let t = 0; t + 1 < T; t++) out[(from + b) * (T - 1) + t] = -losses[b * gpu.T + t];
        }
      }
      return out;
    },
    async maskedLoss(batch: MaskedBatch) {
      checkFits(batch, gpu);
      const { B, T } = batch;
      let sum = 0;
      let count = 0;
      for (const [from, to] of chunks(B)) {
        const ids = rowsOf(batch.inputIds.subarray(from * T, to * T), to - from, T);
        const lossMask = rowsOf(batch.lossMask.subarray(from * T, to * T), to - from, T);
        const r = await gpu.run({ ids, lossMask });
        if (r.count > 0) sum += r.loss * r.count;
        count += r.count;
      }
      return { loss: count > 0 ? sum / count : 0, count };
    },
    async nextTokenLogits(ids) {
      if (ids.length > gpu.T) throw new GradPruneError('input', `The sequence has ${ids.length} tokens; the GPU model holds ${gpu.T}.`, { subject: 'seqLen' });
      await gpu.run({ ids: [ids], lossMask: [new Int32Array(ids.length)] });
      // Only the last position's V logits of row 0 leave the device, not the whole (B, T, V) buffer.
      return readRange(gpu.gpu.device, gpu.logits.buffer, (ids.length - 1) * V, V);
    },
  };
}

/** The CPU reference as a ScoringModel (float32, slow: tests and tiny models). */
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

export interface EvalEngine {
  kind: EngineKind;
  model: ScoringModel & NextTokenModel;
  /** The GPU model behind it (for cost measurements), null on the CPU. */
  gpu: GpuModel | null;
  destroy(): void;
}

export interface EvalEngineOptions {
  kind: EngineKind;
  /** Rows per model call (GPU: the model's B). */
  batchSize: number;
  /** Tokens per row (GPU: the model's T; CPU: the longest sequence accepted). */
  seqLen: number;
  /** A LoRA adapter applied on top of the weights (e.g. readPeftAdapter's). */
  lora?: { config: LoraConfig; adapters: readonly LoraAdapter[] } | null;
}

/** Load a checkpoint's weights into the GPU engine (or the CPU reference) for evaluation and generation. */
export async function loadEvalEngine(config: ModelConfig, store: TensorStore, opts: EvalEngineOptions): Promise<EvalEngine> {
  const lora = opts.lora ?? null;
  if (opts.kind === 'cpu') {
    const weights = await loadModelWeights(config, store);
    const state = lora ? loraState(lora.adapters, lora.config.rank, lora.config.alpha) : null;
    return { kind: 'cpu', model: referenceScoringModel(new ReferenceModel(weights, state, opts.seqLen), opts.seqLen), gpu: null, destroy() {} };
  }
  const gpu = await requestGpu();
  const model = await GpuModel.load(gpu, config, store, {
    batchSize: opts.batchSize,
    seqLen: opts.seqLen,
    lora: lora?.config ?? null,
    adapters: lora?.adapters,
    training: false,
  });
  return {
    kind: 'gpu',
    model: gpuScoringModel(model),
    gpu: model,
    destroy() {
      model.destroy();
      gpu.device.destroy();
    },
  };
}
