// LoRA training steps of a random-weight model through the real engine (GpuModel + Trainer), with and without
// GradPruner's IGIA recorded into each step's encoder after clipping (as gradprune/pipeline.ts does):
// tokens/s, the engine's GPU memory, and the time ratio with/without IGIA from interleaved steps of one run.

import { GradPruneError } from '../errors';
import type { Gpu } from '../gpu/device';
import { IgiaScorer } from '../gradprune/igia';
import { DEFAULT_LORA, initLoraAdapters } from '../nn/lora';
import { checkMemory, estimateMemory } from '../nn/memory';
import { GpuModel, preferredWeightStorage } from '../nn/model';
import { SCORING_ADAMW } from '../nn/optimizer';
import { Trainer } from '../nn/trainer';
import { fixed, mib, type BenchSection } from './report';
import { timeEncoded } from './timing';
import { loraStepFlops, randomBatch, randomConfig, randomStore, type TrainingShape } from './random-model';

export interface TrainingBenchOptions {
  /** Timed steps of each kind (plain and with IGIA), interleaved. */
  steps: number;
  /** Skip a shape whose predicted step time (from the speed measured so far) is over this. */
  maxStepSeconds: number;
  /** FLOP/s to predict step times with before any step has run (e.g. the kernel table's linearForward). */
  flopsPerSecondHint: number | null;
  log: (line: string) => void;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const now = () => performance.now();

/** Fill the training and IGIA sections with one row per shape (or a note saying why a shape was skipped). */
export async function benchTraining(gpu: Gpu, shapes: TrainingShape[], opts: TrainingBenchOptions, training: BenchSection, igia: BenchSection): Promise<void> {
  let flopsPerSecond = opts.flopsPerSecondHint;
  for (const shape of shapes) {
    const { model: m, batchSize: B, seqLen: T } = shape;
    const label = `${m.name} (${m.layers}×${m.hidden}, B${B}×T${T})`;
    const config = randomConfig(m);
    const weights = preferredWeightStorage(gpu);
    const plan = { batchSize: B, seqLen: T, lora: DEFAULT_LORA, weights, checkpointing: false, training: true } as const;
    const estimate = estimateMemory(config, plan);
    try {
      checkMemory(estimate, gpu.adapter);
    } catch (e) {
      if (!(e instanceof GradPruneError)) throw e;
      const why = `skipped ${label}: ${e.message}`;
      training.notes.push(why);
      igia.notes.push(why);
      opts.log(why);
      continue;
    }
    const flops = loraStepFlops(config, B, T);
    if (flopsPerSecond && flops / flopsPerSecond > opts.maxStepSeconds) {
      const why = `skipped ${label}: a step is ~${fixed(flops / 1e9, 0)} GFLOP, ~${fixed(flops / flopsPerSecond / 60, 1)} min at the ${fixed(flopsPerSecond / 1e9, 2)} GFLOP/s measured here (over --max-step-seconds ${opts.maxStepSeconds})`;
      training.notes.push(why);
      igia.notes.push(why);
      opts.log(why);
      continue;
    }

    opts.log(`training: ${label}, ${weights} weights: building random weights…`);
    const store = await randomStore(config, 1);
    const model = await GpuModel.load(gpu, config, store, { ...plan, adapters: initLoraAdapters(config, DEFAULT_LORA, 0) });
    const warmup = 1;
    const maxSteps = warmup + 3 * opts.steps + 2;
    const scorer = new IgiaScorer(
      gpu.device,
      config,
      model.adapters.map((a) => ({ layer: a.layer, module: a.module, gA: { buffer: a.dA }, gB: { buffer: a.dB } })),
      // The host factor store is sized for every step the bench records (the pipeline sizes it for its t steps,
      // under a 4 GiB cap); its per-step copies, the work that matters here, are the same either way. "IGIA alone"
      // records opts.steps steps into one encoder, so the staging ring may grow to that many slots.
      { rank: DEFAULT_LORA.rank, maxSteps, maxFactorBytes: Number.MAX_SAFE_INTEGER, maxStagingBytes: Number.MAX_SAFE_INTEGER },
    );
    let recording = false;
    const trainer = new Trainer(model, {
      schedule: { lr: 1e-4, warmupSteps: 0, decay: 'constant' },
      adamw: SCORING_ADAMW,
      maxGradNorm: 1,
      afterClip: (encoder) => recording && scorer.record(encoder),
    });
    try {
      const batch = randomBatch(B, T, config.vocabSize, 7);
      const timedStep = async (withIgia: boolean) => {
        recording = withIgia;
        const t0 = now();
        const r = await trainer.trainStep(batch);
        if (withIgia) await scorer.flush(); // the step's factors in host memory count as IGIA's cost
        return { seconds: (now() - t0) / 1000, loss: r.loss };
      };
      const first = await timedStep(false); // pipelines, buffers and caches warm up
      await timedStep(true);
      const plain: number[] = [];
      const withIgia: number[] = [];
      // ABBA order, so that a slow drift of the machine weighs on both kinds alike.
      for (let i = 0; i < opts.steps; i++) {
        const order = i % 2 === 0 ? [false, true] : [true, false];
        for (const kind of order) (kind ? withIgia : plain).push((await timedStep(kind)).seconds);
        opts.log(`  step pair ${i + 1}/${opts.steps}: ${fixed(plain[i] * 1e3, 1)} ms plain, ${fixed(withIgia[i] * 1e3, 1)} ms with IGIA`);
      }
      // The same step's GPU work, encoded as Trainer.trainStep encodes it (forward, zero grads, backward, clip,
      // [IGIA], AdamW update), timed by GPU timestamps: free of the submit/readback latency and less exposed to
      // the machine's load than the wall clock.
      const { optimizer } = trainer;
      const encodeStep = (withIgia: boolean) => (encoder: GPUCommandEncoder) => {
        const pass = encoder.beginComputePass({ label: 'forward, backward, clip' });
        for (const calls of [model.passCalls(true), optimizer.clipCalls]) GpuModel.encode(pass, calls);
        pass.end();
        if (withIgia) scorer.record(encoder);
        const update = encoder.beginComputePass({ label: 'update' });
        GpuModel.encode(update, optimizer.updateCalls);
        update.end();
      };
      const gpuPlain: number[] = [];
      const gpuIgia: number[] = [];
      let method = '';
      for (let i = 0; i < opts.steps; i++) {
        for (const kind of i % 2 === 0 ? [false, true] : [true, false]) {
          const t = await timeEncoded(gpu.device, encodeStep(kind), 1);
          (kind ? gpuIgia : gpuPlain).push(t.seconds);
          method = t.method;
        }
      }
      // IGIA's own work (Gram matrices, scores, factor copies) by itself.
      const alone = await timeEncoded(gpu.device, (encoder) => scorer.record(encoder), opts.steps);
      await scorer.flush();
      gpu.throwIfFailed();
      const p = median(plain);
      const q = median(withIgia);
      const gp = median(gpuPlain);
      const gq = median(gpuIgia);
      flopsPerSecond = flops / p;
      training.rows.push({
        model: label,
        weights,
        'step ms': fixed(p * 1e3, 1),
        'tokens/s': fixed((B * T) / p, 1),
        '≈GFLOP/s': fixed(flops / p / 1e9, 2),
        'engine MiB': mib(model.allocatedBytes),
        'estimate MiB': mib(estimate.total),
        'first loss': fixed(first.loss, 3),
        'ln V': fixed(Math.log(config.vocabSize), 3),
      });
      igia.rows.push({
        model: label,
        steps: opts.steps,
        'plain ms': fixed(p * 1e3, 1),
        'IGIA ms': fixed(q * 1e3, 1),
        'wall ratio': `${fixed(q / p, 3)}×`,
        'GPU plain ms': fixed(gp * 1e3, 1),
        'GPU IGIA ms': fixed(gq * 1e3, 1),
        'GPU ratio': `${fixed(gq / gp, 3)}×`,
        'IGIA alone ms': fixed(alone.seconds * 1e3, 2),
        'alone / GPU plain': `${fixed((alone.seconds / gp) * 100, 2)}%`,
        'IGIA MiB': `${mib(scorer.gpuBytes)} GPU + ${mib(scorer.hostBytes)} host (${maxSteps} steps)`,
        timing: method === alone.method ? method : `${method}/${alone.method}`,
      });
    } finally {
      trainer.destroy();
      scorer.destroy();
      model.destroy();
    }
  }
}
