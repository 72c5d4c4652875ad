// The LoRA optimizer on the GPU: global-norm clipping over every adapter gradient (PyTorch clip_grad_norm_)
// and AdamW (PyTorch semantics) with a learning-rate schedule. Calls are built once; `prepare(step)` writes the
// step's lr and bias corrections into the update calls' uniforms before the step is submitted.

import type { KernelCall } from '../gpu/kernel';
import type { Tensor } from '../gpu/tensor';
import { AdamWUpdate, GlobalGradNorm, type AdamWHyper, type KernelLib } from './kernels';
import type { GpuAdapter } from './model';
import { lrAt, validateSchedule, type LrSchedule } from './schedule';

export type { AdamWHyper };

/** The GradPruner scoring run's AdamW (as in the fixtures). */
export const SCORING_ADAMW: AdamWHyper = Object.freeze({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 });

/** Clip at f32's largest value: the norm is still computed (for logging and NaN checks), nothing is scaled. */
const NO_CLIP = 3.4e38;

export interface OptimizerOptions {
  schedule: LrSchedule;
  adamw: AdamWHyper;
  /** Clip the global gradient norm to this (null: no clipping). */
  maxGradNorm: number | null;
}

export class LoraOptimizer {
  /** Global norm, then (when clipping) the in-place scaling of every gradient. */
  readonly clipCalls: KernelCall[];
  readonly updateCalls: KernelCall[];
  /** (2): [pre-clip global norm, clip factor] after clipCalls. */
  readonly norm: Tensor;
  private readonly gradNorm: GlobalGradNorm;
  private readonly updates: AdamWUpdate[] = [];

  constructor(kernels: KernelLib, adapters: readonly GpuAdapter[], readonly opts: OptimizerOptions) {
    validateSchedule(opts.schedule);
    const grads = adapters.flatMap((a) => [a.dA, a.dB]);
    this.gradNorm = new GlobalGradNorm(kernels, grads, opts.maxGradNorm ?? NO_CLIP);
    this.norm = this.gradNorm.norm;
    this.clipCalls = opts.maxGradNorm === null ? this.gradNorm.normCalls : this.gradNorm.calls;
    for (const a of adapters) {
      this.updates.push(new AdamWUpdate(kernels, a.A, a.mA, a.vA, a.dA, opts.adamw), new AdamWUpdate(kernels, a.B, a.mB, a.vB, a.dB, opts.adamw));
    }
    this.updateCalls = this.updates.flatMap((u) => u.calls);
  }

  destroy(): void {
    for (const c of [...this.gradNorm.calls, ...this.updateCalls]) c.destroy();
    this.gradNorm.norm.buffer.destroy();
    this.gradNorm.partials.buffer.destroy();
  }

  /** Write step `step`'s (from 0) lr and AdamW step number into the update calls; returns the lr. */
  prepare(step: number): number {
    const lr = lrAt(this.opts.schedule, step);
    for (const u of this.updates) u.setStep(step + 1, lr);
    return lr;
  }
}
