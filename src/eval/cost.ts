// Measured inference cost of a model on this GPU: forward time per token and the GPU memory of its weights.
// Dense and pruned are measured in the same run and reported as ratios (one machine's timings drift run to run).

import type { TokenBatch } from '../data/types';
import type { GpuModel } from '../nn/model';

export interface ForwardCost {
  /** Median wall time of one (B, T) forward pass, divided by B·T. */
  msPerToken: number;
  /** Every measured pass, ms. */
  passMs: number[];
  tokensPerPass: number;
  /** Bytes of the weights as stored on the GPU. */
  weightBytes: number;
}

export interface CostComparison {
  dense: ForwardCost;
  pruned: ForwardCost;
  /** dense time / pruned time (> 1: the pruned model is faster). */
  speedup: number;
  /** pruned weight bytes / dense weight bytes. */
  weightRatio: number;
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Time `repeats` forward passes over a full (B, T) batch of fixed ids, after `warmup` untimed ones. */
export async function measureForward(gpu: GpuModel, opts: { repeats?: number; warmup?: number; now?: () => number } = {}): Promise<ForwardCost> {
  const now = opts.now ?? (() => performance.now());
  const { B, T } = gpu;
  const V = gpu.config.vocabSize;
  // Fixed, spread-out ids: the same work for dense and pruned, no dependence on a tokenizer.
  const batch: TokenBatch = { B, T, inputIds: Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + 1) % V), lossMask: new Int32Array(B * T), padTokenId: 0 };
  for (let i = 0; i < (opts.warmup ?? 1); i++) await gpu.run(batch);
  const passMs: number[] = [];
  for (let i = 0; i < (opts.repeats ?? 5); i++) {
    const start = now();
    await gpu.run(batch); // resolves after the GPU finished (the loss is read back)
    passMs.push(now() - start);
  }
  return { msPerToken: median(passMs) / (B * T), passMs, tokensPerPass: B * T, weightBytes: gpu.weightBytes() };
}

/** Measure both models alternately (so drift hits both alike) and report the ratios. */
export async function compareForwardCost(dense: GpuModel, pruned: GpuModel, opts: { repeats?: number; warmup?: number } = {}): Promise<CostComparison> {
  const rounds = Math.max(1, opts.repeats ?? 5);
  const d: ForwardCost[] = [];
  const p: ForwardCost[] = [];
  await measureForward(dense, { repeats: 0, warmup: opts.warmup ?? 1 });
  await measureForward(pruned, { repeats: 0, warmup: opts.warmup ?? 1 });
  for (let i = 0; i < rounds; i++) {
    d.push(await measureForward(dense, { repeats: 1, warmup: 0 }));
    p.push(await measureForward(pruned, { repeats: 1, warmup: 0 }));
  }
  const merge = (runs: ForwardCost[]): ForwardCost => {
    const passMs = runs.flatMap((r) => r.passMs);
    return { msPerToken: median(passMs) / runs[0].tokensPerPass, passMs, tokensPerPass: runs[0].tokensPerPass, weightBytes: runs[0].weightBytes };
  };
  const denseCost = merge(d);
  const prunedCost = merge(p);
  return {
    dense: denseCost,
    pruned: prunedCost,
    speedup: denseCost.msPerToken / prunedCost.msPerToken,
    weightRatio: prunedCost.weightBytes / denseCost.weightBytes,
  };
}
