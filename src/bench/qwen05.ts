// One LoRA + IGIA step of a real model's shape end to end: Qwen2.5-0.5B (../shared/configs/qwen2.5-0.5b.json:
// 24 layers, hidden 896, q/k/v biases, tied 151936-token embedding) with random weights, through GpuModel.load
// (residency 'auto': resident when weights and job fit the budget, else streamed), Trainer and IgiaScorer as the
// pipeline runs them, at a short sequence. Reports the load time, the first (cold: pipelines compile) and second
// step's wall time, and the GPU memory the engine allocated beside nn/memory.ts's estimate. Skipped with a note
// when the adapter cannot hold it or a step is predicted to take longer than --max-step-seconds.

import { GradPruneError } from '../errors';
import type { Gpu } from '../gpu/device';
import { IgiaScorer } from '../gradprune/igia';
import { normalizeConfig } from '../model/config';
import { DEFAULT_LORA, initLoraAdapters } from '../nn/lora';
import { memoryLine, planResidency } from '../nn/memory';
import { GpuModel, preferredWeightStorage } from '../nn/model';
import { SCORING_ADAMW } from '../nn/optimizer';
import { Trainer } from '../nn/trainer';
import { forwardFlops, loraStepFlops, randomBatch, randomStore } from './random-model';
import { fixed, mib, type BenchSection } from './report';

export interface Qwen05BenchOptions {
  /** config.json of Qwen2.5-0.5B (null: not available in this runtime). */
  rawConfig: Record<string, unknown> | null;
  batchSize: number;
  seqLen: number;
  maxStepSeconds: number;
  flopsPerSecond: number;
  log: (line: string) => void;
}

export async function benchQwen05(gpu: Gpu, opts: Qwen05BenchOptions, out: BenchSection): Promise<void> {
  if (!opts.rawConfig) {
    out.notes.push('skipped: ../shared/configs/qwen2.5-0.5b.json was not available to this runtime');
    return;
  }
  const config = normalizeConfig(opts.rawConfig, 'qwen2.5-0.5b.json');
  const { batchSize: B, seqLen: T } = opts;
  const label = `Qwen2.5-0.5B (${config.numLayers}×${config.hiddenSize}, V${config.vocabSize}, B${B}×T${T})`;
  const storage = preferredWeightStorage(gpu);
  const plan = { batchSize: B, seqLen: T, lora: DEFAULT_LORA, weights: storage, checkpointing: false, training: true } as const;
  let planned;
  try {
    planned = planResidency(config, plan, gpu.adapter, 'auto');
  } catch (e) {
    if (!(e instanceof GradPruneError)) throw e;
    out.notes.push(`skipped ${label}: this adapter cannot hold it: ${e.message}`);
    return;
  }
  const { residency, estimate } = planned;
  // Streamed weights imply checkpointing: each layer's forward runs again in the backward.
  const flops = loraStepFlops(config, B, T) + (residency === 'streamed' ? forwardFlops(config, B, T) : 0);
  const predicted = flops / opts.flopsPerSecond;
  if (predicted > opts.maxStepSeconds) {
    out.notes.push(`skipped ${label}: a step is ~${fixed(flops / 1e9, 1)} GFLOP, predicted ~${fixed(predicted, 0)} s at the ${fixed(opts.flopsPerSecond / 1e9, 2)} GFLOP/s measured here (over --max-step-seconds ${opts.maxStepSeconds})`);
    return;
  }
  opts.log(`qwen05: ${label}, ${storage} weights ${residency}; ${memoryLine(estimate, gpu.adapter)}`);
  let t0 = performance.now();
  const store = await randomStore(config, 1);
  const storeSeconds = (performance.now() - t0) / 1000;
  t0 = performance.now();
  let model: GpuModel;
  try {
    model = await GpuModel.load(gpu, config, store, { ...plan, adapters: initLoraAdapters(config, DEFAULT_LORA, 0), residency });
  } catch (e) {
    if (!(e instanceof GradPruneError)) throw e;
    out.notes.push(`${label}: the load failed: ${e.message}`);
    return;
  }
  const loadSeconds = (performance.now() - t0) / 1000;
  opts.log(`  random weights ${fixed(storeSeconds, 1)} s, GpuModel.load ${fixed(loadSeconds, 1)} s`);
  const steps = 2;
  const scorer = new IgiaScorer(
    gpu.device,
    config,
    model.adapters.map((a) => ({ layer: a.layer, module: a.module, gA: { buffer: a.dA }, gB: { buffer: a.dB } })),
    { rank: DEFAULT_LORA.rank, maxSteps: steps },
  );
  const trainer = new Trainer(model, {
    schedule: { lr: 1e-4, warmupSteps: 0, decay: 'constant' },
    adamw: SCORING_ADAMW,
    maxGradNorm: 1,
    afterClip: (encoder) => scorer.record(encoder),
  });
  try {
    const batch = randomBatch(B, T, config.vocabSize, 7);
    const seconds: number[] = [];
    let loss = NaN;
    for (let i = 0; i < steps; i++) {
      const s0 = performance.now();
      const r = await trainer.trainStep(batch);
      await scorer.flush(); // the step's IGIA factors in host memory
      seconds.push((performance.now() - s0) / 1000);
      if (i === 0) loss = r.loss;
      opts.log(`  step ${i + 1}: ${fixed(seconds[i], 2)} s, loss ${fixed(r.loss, 4)}`);
      if (seconds[0] > opts.maxStepSeconds) break; // a second step would take as long again
    }
    gpu.throwIfFailed();
    const warm = seconds[1];
    out.rows.push({
      model: label,
      weights: `${storage} ${residency}`,
      'load s': fixed(loadSeconds, 1),
      'step 1 s': fixed(seconds[0], 2),
      'step 2 s': seconds.length > 1 ? fixed(seconds[1], 2) : null,
      'predicted s': fixed(predicted, 1),
      'tokens/s': seconds.length > 1 ? fixed((B * T) / warm, 2) : null, // from the warm step only
      'engine MiB': mib(model.allocatedBytes),
      'estimate MiB': mib(estimate.total),
      'IGIA MiB': `${mib(scorer.gpuBytes)} GPU + ${mib(scorer.hostBytes)} host`,
      'host MiB': mib(model.weights.hostBytes),
      'first loss': fixed(loss, 3),
      'ln V': fixed(Math.log(config.vocabSize), 3),
    });
    out.notes.push(
      `step: Trainer.trainStep (forward, backward, clip, IGIA recorded after clipping, AdamW) + IgiaScorer.flush, wall clock; step 1 includes compiling the pipelines; predicted: the step's FLOPs at the probed linearForward speed; random weights built in ${fixed(storeSeconds, 1)} s (not counted); engine MiB: every buffer GpuModel allocated (weights + job), IGIA's apart`,
    );
  } finally {
    trainer.destroy();
    scorer.destroy();
    model.destroy();
  }
}
