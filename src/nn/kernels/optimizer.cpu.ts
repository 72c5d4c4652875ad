// CPU references of the optimizer kernels (./optimizer.ts): AdamW (param, m, v updated in place) and the global
// gradient norm with its clip factor, as PyTorch computes them in f32.

import type { AdamWHyper } from './optimizer';
import type { Vec } from './cpu-storage';

/** One torch.optim.AdamW step (single-tensor path) at step t (from 1) and learning rate lr: param, m, v in place. */
export function adamw(param: Vec, m: Vec, v: Vec, grad: Vec, t: number, lr: number, h: AdamWHyper): void {
  const bc1 = 1 - h.beta1 ** t;
  const bc2Sqrt = Math.sqrt(1 - h.beta2 ** t);
  const stepSize = lr / bc1;
  for (let i = 0; i < param.length; i++) {
    param[i] *= 1 - lr * h.weightDecay;
    m[i] += (grad[i] - m[i]) * (1 - h.beta1); // torch: exp_avg.lerp_(grad, 1 - beta1)
    v[i] = v[i] * h.beta2 + (1 - h.beta2) * grad[i] * grad[i];
    param[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + h.eps);
  }
}

/** torch.nn.utils.clip_grad_norm_: the pre-clip global L2 norm and the factor min(1, max / (norm + 1e-6)), in f32. */
export function gradNorm(grads: Iterable<Vec>, maxNorm: number): { norm: number; clip: number } {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  const norm = Math.fround(Math.sqrt(ss));
  return { norm, clip: Math.min(1, Math.fround(maxNorm / (norm + 1e-6))) };
}
