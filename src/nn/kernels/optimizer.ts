// AdamW (PyTorch semantics) and the global gradient norm with clipping, all on the GPU.

import adamwWgsl from '../../../shaders/adamw.wgsl?raw';
import gradnormWgsl from '../../../shaders/gradnorm.wgsl?raw';
import type { KernelCall } from '../../gpu/kernel';
import { createTensor, type Tensor } from '../../gpu/tensor';
import { expectNumel, f32, u32, type KernelLib, type KernelSource } from './lib';


export interface AdamWHyper {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** One parameter's AdamW update; setStep writes the learning rate and step number (t from 1) before a submit. */
export class AdamWUpdate {
  readonly calls: KernelCall[];
  private readonly call: KernelCall;

  constructor(
    lib: KernelLib,
    readonly param: Tensor,
    m: Tensor,
    v: Tensor,
    grad: Tensor,
    readonly hyper: AdamWHyper,
  ) {
    for (const t of [m, v, grad]) expectNumel(t, param.numel, 'adamw');
    this.call = lib.elementwise(
      { label: 'adamw', code: adamwWgsl, entryPoint: 'adamw', bindings: ['write', 'write', 'write', 'read', 'uniform'] },
      `adamw(${param.label})`,
      [param, m, v, grad],
      param.numel,
      this.uniforms(1, 0),
    );
    this.calls = [this.call];
  }

  setStep(t: number, lr: number): void {
    this.call.setUniforms(this.uniforms(t, lr));
  }

  private uniforms(t: number, lr: number) {
    const { beta1, beta2, eps, weightDecay } = this.hyper;
    return [u32(this.param.numel), f32(lr), f32(beta1), f32(beta2), f32(eps), f32(weightDecay), f32(1 - beta1 ** t), f32(Math.sqrt(1 - beta2 ** t))];
  }
}

/** Partial sums per tensor: enough workgroups to keep a GPU busy, few enough that the final sum is one pass. */
const slotsFor = (numel: number) => Math.min(64, Math.max(1, Math.ceil(numel / 4096)));

/**
 * The global L2 norm of many gradients and their clipping to maxNorm (PyTorch clip_grad_norm_).
 * `norm` (2) holds [pre-clip norm, clip factor] after `normCalls`; `clipCalls` scale every gradient in place.
 */
export class GlobalGradNorm {
  readonly norm: Tensor;
  readonly partials: Tensor;
  readonly normCalls: KernelCall[] = [];
  readonly clipCalls: KernelCall[] = [];

  constructor(lib: KernelLib, grads: Tensor[], maxNorm: number) {
    const slots = grads.map((g) => slotsFor(g.numel));
    const total = slots.reduce((a, b) => a + b, 0);
    this.partials = createTensor(lib.device, 'gradnorm.partials', [total]);
    this.norm = createTensor(lib.device, 'gradnorm.norm', [2]);
    const src = (entryPoint: string): KernelSource => ({ label: entryPoint, code: gradnormWgsl, entryPoint, bindings: ['write', 'read', 'uniform'] });
    let offset = 0;
    grads.forEach((g, i) => {
      this.normCalls.push(lib.call(src('sumSquares'), `sumSquares(${g.label})`, [this.partials, g], [slots[i]], [u32(g.numel), u32(offset), f32(0)]));
      offset += slots[i];
    });
    this.normCalls.push(lib.call(src('gradNormFinalize'), 'gradNormFinalize', [this.norm, this.partials], [1], [u32(total), u32(0), f32(maxNorm)]));
    for (const g of grads) {
      this.clipCalls.push(lib.elementwise(src('gradScale'), `gradScale(${g.label})`, [g, this.norm], g.numel, [u32(g.numel), u32(0), f32(0)]));
    }
  }

  get calls(): KernelCall[] {
    return [...this.normCalls, ...this.clipCalls];
  }
}
