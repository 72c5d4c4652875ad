// The options of one engine job (its (B, T) shape, adapters, what it trains) and the checks made before anything is
// allocated; GpuModel (./model.ts) takes them.

import { GradPruneError } from '../errors';
import type { ModelConfig } from '../model/config';
import type { LoraAdapter, LoraConfig } from './lora';
import type { ResidencyChoice } from './memory';
import type { WeightPrecision, WeightStorage } from './precision';
import type { WeightGradOptions } from './weight-grads';

/** The shape and kind of one job on a model's weights. */
export interface JobOptions {
  /** Rows per batch (B) and tokens per row (T): activations are allocated for exactly this. */
  batchSize: number;
  seqLen: number;
  /** LoRA adapters (null: no adapters, forward only). */
  lora: LoraConfig | null;
  /** Initial adapter values (e.g. initLoraAdapters or a fixture); required when lora is set. */
  adapters?: readonly LoraAdapter[];
  /** Recompute each layer's forward in its backward pass, keeping only layer inputs (default false; always on when streamed). */
  checkpointing?: boolean;
  /** Allocate gradients and backward buffers (default: true when lora is set). */
  training?: boolean;
  /** GPU memory the weights and this job may use together (default: checkMemory's budget; `--max-gpu-memory`). */
  memoryBudget?: number;
  /** Rows per chunk of the lm_head + cross-entropy (default: what keeps a logits chunk under 64 MiB). */
  lossChunkRows?: number;
  /** Gradients of these layers' frozen linear weights, summed over the job's backward passes (needs training). */
  weightGrads?: WeightGradOptions;
  /** Give the lm_head a gradient (dW += dlogitsᵀ·h; tied embeddings: on an untied job-owned copy). Needs training and f32 weights. */
  trainLmHead?: boolean;
}

export interface EngineOptions extends JobOptions {
  /**
   * 'auto' (f16 with shader-f16, else f32), 'f32', or 'f16' (refused without shader-f16). Default f32, the precision
   * the fixtures are checked at: every setting a person chooses (run settings, eval engines, CLI, studio) passes
   * 'auto' unless told otherwise.
   */
  weights?: WeightPrecision;
  /** 'auto' (default): resident when weights and job fit the budget, else streamed; or forced. */
  residency?: ResidencyChoice;
  /** Streamed: host memory for layer weights; layers past it are re-read from the checkpoint at each upload. */
  hostCacheBytes?: number;
  /** Called after each tensor read from the checkpoint with (done, total) bytes. */
  onProgress?: (done: number, total: number) => void;
}

/** The memory plan of a job (streamed weights force checkpointing; the memory module decides that too). */
export function jobPlanOf(opts: JobOptions, weights: WeightStorage) {
  return {
    batchSize: opts.batchSize,
    seqLen: opts.seqLen,
    lora: opts.lora,
    weights,
    checkpointing: opts.checkpointing ?? false,
    training: opts.training ?? opts.lora !== null,
  };
}

export function validateOptions(config: ModelConfig, opts: JobOptions): void {
  const positive = (v: number, what: string) => {
    if (!Number.isInteger(v) || v <= 0) throw new GradPruneError('input', `${what} must be a positive integer (got ${v}).`, { subject: what });
  };
  positive(opts.batchSize, 'batch size');
  positive(opts.seqLen, 'sequence length');
  if (opts.seqLen > config.maxPositionEmbeddings) {
    throw new GradPruneError('input', `Sequence length ${opts.seqLen} is longer than the model's ${config.maxPositionEmbeddings} positions.`, {
      subject: 'sequence length',
      hint: `Use at most ${config.maxPositionEmbeddings} tokens.`,
    });
  }
  if (config.headDim > 256) throw new GradPruneError('config', `head_dim ${config.headDim} is over the attention kernel's 256.`, { subject: 'config.json' });
}
