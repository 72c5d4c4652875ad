// One LoRA training step on the GPU: next batch → forward → zero grads → backward → clip → (hook) → update,
// recorded into one command encoder and submitted once (streamed weights: one submit per layer, the clip and
// update in the last). The hook sees the clipped gradients of every adapter
// (model.adapters[i].dA / dB) and may record its own passes into the same encoder (GradPruner's IGIA does).

import type { TokenBatch } from '../data/types';
import { GradPruneError } from '../errors';
import { createReadbackBuffer, MAP_READ } from '../gpu/tensor';
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
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      throw new GradPruneError('numeric', `Training diverged at step ${step}: the ${Number.isFinite(loss) ? 'gradient norm' : 'loss'} is ${Number.isFinite(loss) ? gradNorm : loss} (lr ${lr}).`, {
        subject: `step ${step}`,
        hint: 'Lower the learning rate (or enable gradient clipping) and run again.',
      });
    }
    this.step++;
    return { step, loss, lr, gradNorm, tokens };
  }

  destroy(): void {
    this.optimizer.destroy();
    this.staging.destroy();
  }
}
