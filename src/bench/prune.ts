// Pruned vs dense inference: the forward pass of a random-weight model and of the same model with N of its L
// layers removed by a GradPruner plan (the pruned config.json made by the exporter's own code), timed in one
// run: time per token and weight memory, each as a ratio to the dense model.

import type { Gpu } from '../gpu/device';
import { makePlan } from '../gradprune/plan';
import { prunedConfig } from '../export/config';
import { normalizeConfig, type ModelConfig } from '../model/config';
import { GpuModel, preferredWeightStorage } from '../nn/model';
import { fixed, mib, type BenchSection } from './report';
import { forwardFlops, randomBatch, randomConfig, randomStore, type TrainingShape } from './random-model';
import { createTimer } from './timing';

export interface PruneBenchOptions {
  reps: number;
  /** Fraction of the layers to prune (the paper removes ~40% of the block parameters). */
  pruneFraction: number;
  /** Whether this many FLOPs would take over --max-step-seconds here. */
  tooSlow: (flops: number) => boolean;
  log: (line: string) => void;
}

async function forwardSeconds(gpu: Gpu, config: ModelConfig, B: number, T: number, reps: number) {
  const model = await GpuModel.load(gpu, config, await randomStore(config, 3), { batchSize: B, seqLen: T, lora: null, weights: preferredWeightStorage(gpu) });
  try {
    model.setBatch(randomBatch(B, T, config.vocabSize, 11));
    const t = await createTimer(gpu.device).time(model.forwardCalls, reps);
    gpu.throwIfFailed();
    return { ...t, weightBytes: model.weightBytes(), allocated: model.allocatedBytes };
  } finally {
    model.destroy();
  }
}

export async function benchPrune(gpu: Gpu, shape: TrainingShape, opts: PruneBenchOptions, out: BenchSection): Promise<void> {
  const { model: m, batchSize: B, seqLen: T } = shape;
  const dense = randomConfig(m);
  const L = dense.numLayers;
  const N = Math.max(1, Math.round(opts.pruneFraction * L));
  // Any scores will do for timing: a fixed, uneven pattern (layer 0 is never pruned).
  const scores = Array.from({ length: L }, (_, l) => ((l * 7919) % 13) + 1);
  const plan = makePlan(scores, dense, { prune: N, merge: 0 });
  const pruned = normalizeConfig(prunedConfig(dense.raw, plan.kept.length), 'pruned config.json');
  if (opts.tooSlow(forwardFlops(dense, B, T) * (opts.reps + 1))) {
    out.notes.push(`skipped ${m.name} B${B}×T${T}: ${opts.reps + 1} forward passes are predicted to take over --max-step-seconds here`);
    return;
  }
  opts.log(`prune: ${m.name}, dense ${L} layers vs ${pruned.numLayers} (drops ${plan.pruned.join(', ')}), forward B${B}×T${T}`);
  const d = await forwardSeconds(gpu, dense, B, T, opts.reps);
  const p = await forwardSeconds(gpu, pruned, B, T, opts.reps);
  const tokens = B * T;
  const row = (name: string, c: ModelConfig, r: typeof d) => ({
    model: `${m.name} ${name}`,
    layers: c.numLayers,
    'forward ms': fixed(r.seconds * 1e3, 2),
    'µs/token': fixed((r.seconds / tokens) * 1e6, 1),
    'weights MiB': mib(r.weightBytes),
    'time ratio': `${fixed(r.seconds / d.seconds, 3)}×`,
    'memory ratio': `${fixed(r.weightBytes / d.weightBytes, 3)}×`,
    timing: r.method,
  });
  out.rows.push(row('dense', dense, d), row(`pruned ${N}/${L}`, pruned, p));
  out.notes.push(
    `the plan predicts ${fixed(plan.after.flopsPerToken / plan.before.flopsPerToken, 3)}× the FLOPs/token and ${fixed(plan.after.weightBytes / plan.before.weightBytes, 3)}× the weight bytes (embeddings and lm_head are not pruned)`,
  );
}
