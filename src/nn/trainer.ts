// One LoRA training step on the GPU: next batch → forward → zero grads → backward → clip → (hook) → update,
// recorded into one command encoder and submitted once (streamed weights: one submit per layer, the clip and
// update in the last). The hook sees the clipped gradients of every adapter
// (model.adapters[i].dA / dB) and may record its own passes into the same encoder (GradPruner's IGIA does).

import type { TokenBatch } from '../data/types';
import { GradPruneError } from '../errors';
import { createReadbackBuffer, MAP_READ, readback } from '../gpu/tensor';
import { GpuModel } from './model';
import { LoraOptimizer, type OptimizerOptions } from './optimizer';

export interface TrainerOptions extends OptimizerOptions {
  /** Called after clipping, before the update, with the step's encoder (no pass open) and the step index. */
  afterClip?: (encoder: GPUCommandEncoder, step: number) => void;
}

export interface StepResult {
  step: number;
  loss: number;
  lr: number;
  /** Global L2 norm of the adapter gradients before clipping. */
  gradNorm: number;
  /** Target tokens that counted in the loss. */
  tokens: number;
}

/** A step's loss or gradient norm is NaN / Inf: the step, its lr and the module it shows in; `withHint` says what to do. */
export class TrainingDiverged extends GradPruneError {
  constructor(
    readonly step: number,
    readonly lr: number,
    /** The adapter's module, e.g. model.layers.3.mlp.down_proj (null when no gradient is non-finite). */
    readonly module: string | null,
    /** The message without its hint. */
    readonly detail: string,
    hint = 'Lower the learning rate (or enable gradient clipping) and run again.',
  ) {
    super('numeric', detail, { subject: module ?? `step ${step}`, hint });
  }

  /** The same failure with another hint (e.g. where the last checkpoint is and how to resume from it). */
  withHint(hint: string): TrainingDiverged {
    return new TrainingDiverged(this.step, this.lr, this.module, this.detail, hint);
  }
}

export class Trainer {
  readonly optimizer: LoraOptimizer;
  step = 0;
  private readonly staging: GPUBuffer; // [loss, count, norm, clip factor]

  constructor(readonly model: GpuModel, readonly opts: TrainerOptions) {
    if (!model.training || model.adapters.length === 0) {
      throw new Error('Training needs a model loaded with LoRA adapters and training enabled.');
    }
    this.optimizer = new LoraOptimizer(model.kernels, model.adapters, opts);
    this.staging = createReadbackBuffer(model.gpu.device, 'trainer.readback', 16);
  }

  /**
   * One step; with `stopRequested`, a stop asked between its kernel batches (streamed weights: between layer
   * submissions) abandons the step before its update and returns null (the adapters stay as after the last step).
   */
  async trainStep(batch: TokenBatch): Promise<StepResult>;
  async trainStep(batch: TokenBatch, stopRequested?: () => boolean): Promise<StepResult | null>;
  async trainStep(batch: TokenBatch, stopRequested?: () => boolean): Promise<StepResult | null> {
    const { model, optimizer, step } = this;
    model.setBatch(batch);
    const lr = optimizer.prepare(step);
    const completed = await model.submitPasses(true, (encoder) => {
      const clip = encoder.beginComputePass({ label: 'clip' });
      GpuModel.encode(clip, optimizer.clipCalls);
      clip.end();
      this.opts.afterClip?.(encoder, step);
      const update = encoder.beginComputePass({ label: 'update' });
      GpuModel.encode(update, optimizer.updateCalls);
      update.end();
      encoder.copyBufferToBuffer(model.stats.buffer, 0, this.staging, 0, 8);
      encoder.copyBufferToBuffer(optimizer.norm.buffer, 0, this.staging, 8, 8);
    }, stopRequested);
    if (!completed) return null;
    await this.staging.mapAsync(MAP_READ);
    const [loss, tokens, gradNorm] = new Float32Array(this.staging.getMappedRange().slice(0));
    this.staging.unmap();
    model.gpu.throwIfFailed();
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) throw await this.diverged(step, loss, gradNorm, lr);
    this.step++;
    return { step, loss, lr, gradNorm, tokens };
  }

  /**
   * The error of a step whose loss or gradient norm is not finite, naming the module it shows in: with a NaN loss
   * (the forward), the earliest adapter whose gradient is non-finite; with a finite loss, the first adapter the
   * backward pass reaches (from the last layer down) whose gradient is non-finite. Reads the gradients back, so only
   * this failure path pays for it.
   */
  private async diverged(step: number, loss: number, gradNorm: number, lr: number): Promise<TrainingDiverged> {
    const forward = !Number.isFinite(loss);
    const order = forward ? this.model.adapters : [...this.model.adapters].reverse();
    let culprit: { name: string; tensor: string; value: number } | null = null;
    for (const a of order) {
      for (const [tensor, grad] of [['lora_A', a.dA], ['lora_B', a.dB]] as const) {
        const value = (await readback(this.model.gpu.device, grad)).find((v) => !Number.isFinite(v));
        if (value !== undefined) culprit = { name: a.name, tensor, value };
        if (culprit) break;
      }
      if (culprit) break;
    }
    const what = forward ? `the loss is ${loss} (the forward pass)` : `the gradient norm is ${gradNorm} (the backward pass)`;
    const where = !culprit
      ? 'no LoRA gradient holds a NaN or Inf'
      : forward
        ? `the earliest module whose LoRA gradient is non-finite is ${culprit.name} (${culprit.tensor} gradient: ${culprit.value})`
        : `walking back from the last layer, the LoRA gradient first turns non-finite in ${culprit.name} (${culprit.tensor} gradient: ${culprit.value})`;
    return new TrainingDiverged(step, lr, culprit?.name ?? null, `Training diverged at step ${step}: ${what}; ${where} (lr ${lr}).`);
  }

  destroy(): void {
    this.optimizer.destroy();
    this.staging.destroy();
  }
}
