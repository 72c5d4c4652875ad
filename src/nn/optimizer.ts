// The optimizer on the GPU (LoRA adapters, or any trained tensors): global-norm clipping over every gradient (PyTorch clip_grad_norm_)
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

/** One trained tensor with its gradient and AdamW moments (all the same shape, f32). */
export interface TrainedTensor {
  param: Tensor;
  grad: Tensor;
  m: Tensor;
  v: Tensor;
}

/** Clip + AdamW over any list of trained tensors (LoRA adapters; partial-layer fine-tuning's weights). */
export class ParamOptimizer {
  /** Global norm, then (when clipping) the in-place scaling of every gradient. */
  readonly clipCalls: KernelCall[];
  readonly updateCalls: KernelCall[];
  /** (2): [pre-clip global norm, clip factor] after clipCalls. */
  readonly norm: Tensor;
  private readonly gradNorm: GlobalGradNorm;
  private readonly updates: AdamWUpdate[] = [];

  constructor(kernels: KernelLib, params: readonly TrainedTensor[], readonly opts: OptimizerOptions) {
    validateSchedule(opts.schedule);
    this.gradNorm = new GlobalGradNorm(kernels, params.map((p) => p.grad), opts.maxGradNorm ?? NO_CLIP);
    this.norm = this.gradNorm.norm;
    this.clipCalls = opts.maxGradNorm === null ? this.gradNorm.normCalls : this.gradNorm.calls;
    for (const p of params) this.updates.push(new AdamWUpdate(kernels, p.param, p.m, p.v, p.grad, opts.adamw));
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

/** The LoRA adapters' optimizer: every adapter's A then B, in the adapters' order. */
export class LoraOptimizer extends ParamOptimizer {
  constructor(kernels: KernelLib, adapters: readonly GpuAdapter[], opts: OptimizerOptions) {
    super(kernels, adapters.flatMap((a) => [{ param: a.A, grad: a.dA, m: a.mA, v: a.vA }, { param: a.B, grad: a.dB, m: a.mB, v: a.vB }]), opts);
  }
}
