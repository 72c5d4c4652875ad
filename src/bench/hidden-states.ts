// Block Influence + angular distance's hidden-state statistics (nn/hidden-stats.ts): what gathering them adds to a
// forward pass of a random-weight model — the collector's kernels timed alone against the forward they follow, and
// the GPU memory they take — for the pairs a scoring run gathers for BI and angular distance at N ≈ L/4.

import type { Gpu } from '../gpu/device';
import { hiddenStatePairsFor, importanceMethod } from '../gradprune/importance';
import { GpuModel, preferredWeightStorage } from '../nn/model';
import { fixed, type BenchSection } from './report';
import { forwardFlops, randomBatch, randomConfig, randomStore, type TrainingShape } from './random-model';
import { createTimer } from './timing';

export interface HiddenStatesBenchOptions {
  reps: number;
  tooSlow: (flops: number) => boolean;
  log: (line: string) => void;
}

export async function benchHiddenStates(gpu: Gpu, shapes: readonly TrainingShape[], opts: HiddenStatesBenchOptions, out: BenchSection): Promise<void> {
  for (const { model: m, batchSize: B, seqLen: T } of shapes) {
    const config = randomConfig(m);
    if (opts.tooSlow(forwardFlops(config, B, T) * (opts.reps + 1))) {
      out.notes.push(`skipped ${m.name} B${B}×T${T}: ${opts.reps + 1} forward passes are predicted to take over --max-step-seconds here`);
      continue;
    }
    const L = config.numLayers;
    const n = Math.max(1, Math.round(L / 4));
    const pairs = hiddenStatePairsFor(['bi', 'angular'].map(importanceMethod), L, n);
    opts.log(`hidden states: ${m.name}, ${pairs.length} pairs (BI + angular n = ${n}), B${B}×T${T}`);
    const model = await GpuModel.load(gpu, config, await randomStore(config, 5), { batchSize: B, seqLen: T, lora: null, weights: preferredWeightStorage(gpu) });
    try {
      model.setBatch(randomBatch(B, T, config.vocabSize, 13));
      const timer = createTimer(gpu.device);
      const forward = await timer.time(model.forwardCalls, opts.reps);
      const collector = model.collectHiddenStates(pairs);
      const alone = await timer.time(collector.calls, opts.reps);
      gpu.throwIfFailed();
      out.rows.push({
        model: `${m.name} (${L}×${m.hidden}, B${B}×T${T})`,
        pairs: pairs.length,
        'forward ms': fixed(forward.seconds * 1e3, 3),
        'statistics ms': fixed(alone.seconds * 1e3, 3),
        'statistics / forward': `${fixed(alone.seconds / forward.seconds, 4)}×`,
        'statistics KiB': fixed(collector.gpuBytes / 1024, 1),
        timing: alone.method,
      });
    } finally {
      model.destroy();
    }
  }
  out.notes.push('statistics: one hiddenDistanceForward per pair (two (B, T, C) reads each) and one accumulate, recorded once per forward pass after the last layer; forward: the same model\'s forward without them');
}
