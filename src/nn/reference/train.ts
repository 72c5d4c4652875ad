// CPU reference of the LoRA training step: global-norm clipping and AdamW as PyTorch does them, and the
// GradPruner scoring run (t steps, clipped gradients recorded per step for IGIA).

import { adamw, gradNorm } from '../kernels/optimizer.cpu';
import type { TokenBatch } from '../../data/types';
import type { LoraAdapter } from '../lora';
import { SCORING_ADAMW, type AdamWHyper } from '../optimizer';
import type { AdapterGrad, ReferenceModel } from './model';

/** PyTorch clip_grad_norm_: returns the pre-clip total norm; scales every gradient in place by min(1, max/(total+1e-6)). */
export function clipGradNorm(grads: Iterable<AdapterGrad>, maxNorm: number): number {
  const all = [...grads].flatMap((g) => [g.dA, g.dB]);
  const { norm, clip } = gradNorm(all, maxNorm);
  if (clip < 1) for (const t of all) for (let i = 0; i < t.length; i++) t[i] *= clip;
  return norm;
}

/** PyTorch AdamW (single-tensor path) over a set of parameters with moments; step counts from 1. */
export class AdamW {
  private readonly m = new Map<Float32Array, Float32Array>();
  private readonly v = new Map<Float32Array, Float32Array>();
  step = 0;

  constructor(readonly opts: AdamWHyper = SCORING_ADAMW) {}

  /** Update every (param, grad) pair with learning rate lr. */
  update(pairs: Array<[param: Float32Array, grad: Float32Array]>, lr: number): void {
    this.step++;
    for (const [p, g] of pairs) {
      let m = this.m.get(p);
      let v = this.v.get(p);
      if (!m || !v) {
        this.m.set(p, (m = new Float32Array(p.length)));
        this.v.set(p, (v = new Float32Array(p.length)));
      }
      adamw(p, m, v, g, this.step, lr, this.opts);
    }
  }
}

/** The fixtures' schedule: lr · min(1, step / warmup). */
export const warmupLr = (baseLr: number, warmupSteps: number, step: number): number =>
  warmupSteps > 0 ? baseLr * Math.min(1, step / warmupSteps) : baseLr;

export interface ScoringStep {
  loss: number;
  lr: number;
  gradNorm: number;
  /** The clipped gradients of this step, keyed by adapter name. */
  grads: Map<string, AdapterGrad>;
}

export interface ScoringRunOptions {
  steps: number;
  lr: (step: number) => number;
  maxGradNorm: number;
  adamw?: AdamWHyper;
  /** Batch of step s: ids and loss mask (B, T). */
  batch: (step: number) => TokenBatch;
}

/** Train the model's adapters in place for `steps` steps, returning per-step loss, lr, pre-clip norm and clipped grads. */
export function referenceScoringRun(model: ReferenceModel, opts: ScoringRunOptions): ScoringStep[] {
  if (!model.lora) throw new Error('referenceScoringRun needs a model with LoRA adapters');
  const adapters: LoraAdapter[] = [...model.lora.adapters.values()];
  const opt = new AdamW(opts.adamw);
  const out: ScoringStep[] = [];
  for (let s = 0; s < opts.steps; s++) {
    const { inputIds, lossMask, B, T } = opts.batch(s);
    const { loss, grads } = model.lossAndGrads(inputIds, lossMask, B, T);
    const gradNorm = clipGradNorm(grads.values(), opts.maxGradNorm);
    const lr = opts.lr(s);
    const pairs: Array<[Float32Array, Float32Array]> = [];
    for (const a of adapters) {
      const g = grads.get(a.name)!;
      pairs.push([a.A, g.dA], [a.B, g.dB]);
    }
    opt.update(pairs, lr);
    out.push({ loss, lr, gradNorm, grads });
  }
  return out;
}
