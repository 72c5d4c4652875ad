// Streamed vs resident weights: the same LoRA training step (Trainer.trainStep: forward, backward, clip, AdamW) on
// the same random-weight model, adapters and batch, with the decoder layers resident, resident with gradient
// checkpointing (the recompute streaming implies, without uploads), and streamed layer by layer from host memory.
// Steps of the three are interleaved; the time ratios come from the medians of one run. The bytes uploaded per
// step are measured by ModelWeights.uploadedBytes (the difference over each step) beside nn/memory.ts's
// uploadBytesPerStep; the losses must be identical (the same kernels on the same values).

import { GradPruneError } from '../errors';
import type { Gpu } from '../gpu/device';
import { DEFAULT_LORA, initLoraAdapters } from '../nn/lora';
import { checkMemory, estimateMemory, type MemoryEstimate } from '../nn/memory';
import { GpuModel, preferredWeightStorage, type Residency } from '../nn/model';
import { SCORING_ADAMW } from '../nn/optimizer';
import { Trainer } from '../nn/trainer';
import { forwardFlops, loraStepFlops, randomBatch, randomConfig, randomStore, type TrainingShape } from './random-model';
import { fixed, mib, type BenchSection } from './report';

export interface StreamingBenchOptions {
  /** Timed steps of each kind. */
  steps: number;
  maxStepSeconds: number;
  /** FLOP/s to predict step times with. */
  flopsPerSecond: number;
  log: (line: string) => void;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Variant {
  name: string;
  residency: Residency;
  checkpointing: boolean;
  estimate: MemoryEstimate;
  model?: GpuModel;
  trainer?: Trainer;
  seconds: number[];
  uploads: number[];
  losses: number[];
}

export async function benchStreaming(gpu: Gpu, shape: TrainingShape, opts: StreamingBenchOptions, out: BenchSection): Promise<void> {
  const { model: m, batchSize: B, seqLen: T } = shape;
  const label = `${m.name} (${m.layers}×${m.hidden}, B${B}×T${T})`;
  const config = randomConfig(m);
  const storage = preferredWeightStorage(gpu);
  const plan = { batchSize: B, seqLen: T, lora: DEFAULT_LORA, weights: storage, training: true } as const;
  const variants: Variant[] = [
    { name: 'resident', residency: 'resident', checkpointing: false },
    { name: 'resident + checkpointing', residency: 'resident', checkpointing: true },
    { name: 'streamed', residency: 'streamed', checkpointing: true },
  ].map((v) => ({ ...(v as Pick<Variant, 'name' | 'residency' | 'checkpointing'>), estimate: estimateMemory(config, { ...plan, residency: v.residency as Residency, checkpointing: v.checkpointing }), seconds: [], uploads: [], losses: [] }));
  for (const v of variants) {
    try {
      checkMemory(v.estimate, gpu.adapter);
    } catch (e) {
      if (!(e instanceof GradPruneError)) throw e;
      out.notes.push(`skipped ${label}: ${v.name} does not fit: ${e.message}`);
      return;
    }
  }
  // A checkpointed step runs each layer's forward twice.
  const predicted = (loraStepFlops(config, B, T) + forwardFlops(config, B, T)) / opts.flopsPerSecond;
  if (predicted > opts.maxStepSeconds) {
    out.notes.push(`skipped ${label}: a step is predicted to take ~${fixed(predicted, 0)} s here (over --max-step-seconds ${opts.maxStepSeconds})`);
    return;
  }
  opts.log(`streaming: ${label}, ${storage} weights: resident, resident + checkpointing, streamed…`);
  const store = await randomStore(config, 1);
  const adapters = initLoraAdapters(config, DEFAULT_LORA, 0);
  try {
    for (const v of variants) {
      v.model = await GpuModel.load(gpu, config, store, { ...plan, weights: storage, adapters, residency: v.residency, checkpointing: v.checkpointing });
      v.trainer = new Trainer(v.model, { schedule: { lr: 1e-4, warmupSteps: 0, decay: 'constant' }, adamw: SCORING_ADAMW, maxGradNorm: 1 });
    }
    const batch = randomBatch(B, T, config.vocabSize, 7);
    const step = async (v: Variant, timed: boolean) => {
      const w = v.model!.weights;
      const up0 = w.uploadedBytes;
      const t0 = performance.now();
      const r = await v.trainer!.trainStep(batch);
      const s = (performance.now() - t0) / 1000;
      v.losses.push(r.loss);
      if (timed) {
        v.seconds.push(s);
        v.uploads.push(w.uploadedBytes - up0);
      }
    };
    for (const v of variants) await step(v, false); // pipelines, caches; the streamed slots fill
    for (let i = 0; i < opts.steps; i++) {
      const order = i % 2 === 0 ? variants : [...variants].reverse();
      for (const v of order) await step(v, true);
      opts.log(`  step ${i + 1}/${opts.steps}: ${variants.map((v) => `${v.name} ${fixed(v.seconds[i] * 1e3, 1)} ms`).join(', ')}`);
    }
    gpu.throwIfFailed();
    const base = median(variants[0].seconds);
    for (const v of variants) {
      const s = median(v.seconds);
      const maxDiff = Math.max(...v.losses.map((l, i) => Math.abs(l - variants[0].losses[i])));
      out.rows.push({
        model: label,
        weights: `${storage} ${v.name}`,
        'step ms': fixed(s * 1e3, 1),
        'time / resident': `${fixed(s / base, 3)}×`,
        'engine MiB': mib(v.model!.allocatedBytes),
        'estimate MiB': mib(v.estimate.total),
        'host MiB': `${mib(v.model!.weights.hostBytes)} (est. ${mib(v.estimate.hostBytes)})`,
        'uploaded MiB/step': mib(median(v.uploads)),
        'estimate MiB/step': mib(v.estimate.uploadBytesPerStep),
        'max |Δloss| vs resident': maxDiff,
      });
    }
    const layer = variants[2].model!.weights.layerBytes();
    out.notes.push(
      `medians of ${opts.steps} interleaved Trainer.trainStep calls each (wall clock, submit to readback) after one untimed step; uploaded: ModelWeights.uploadedBytes over each timed step (median); a layer is ${mib(layer)} MiB, so ${fixed(median(variants[2].uploads) / layer, 1)} layer uploads a step`,
      'resident + checkpointing recomputes each layer\'s forward in the backward as streaming does, without uploads: streamed / (resident + checkpointing) is the cost of the uploads and of one submit per layer',
    );
  } finally {
    for (const v of variants) {
      v.trainer?.destroy();
      v.model?.destroy();
    }
  }
}
