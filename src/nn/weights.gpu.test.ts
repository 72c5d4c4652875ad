// Weights apart from jobs: one upload shared by several jobs, and layer-by-layer streaming that gives exactly the
// resident results (forward, LoRA gradients, training steps, KV-cache generation), uploading what the memory
// estimate says it uploads, and chosen by the budget when the resident job does not fit.
import { describe, expect, it } from 'vitest';
import { sliceRows } from '../data/batch';
import { GradPruneError } from '../errors';
import { fixtureDir } from '../testing/paths';
import { testGpu } from '../testing/gpu';
import { Generator } from './generate';
import { DEFAULT_LORA, initLoraAdapters } from './lora';
import { estimateMemory } from './memory';
import { GpuModel } from './model';
import { relError, relL2 } from './reference/compare';
import { loraGradCase } from './reference/fixture';
import { Trainer } from './trainer';
import { ModelWeights } from './weights';

const gpu = await testGpu();

describe('streamed weights', () => {
  it.each(['tiny-llama', 'tiny-qwen3'])('%s: loss and every LoRA gradient equal the resident run bit for bit, and the fixture', async (name) => {
    const { fm, ref, B, T, adapters, batch } = await loraGradCase(fixtureDir(name));
    const opts = { batchSize: B, seqLen: T, lora: DEFAULT_LORA, adapters, checkpointing: true };
    const resident = await GpuModel.load(gpu, fm.config, fm.store, { ...opts, residency: 'resident' });
    const streamed = await GpuModel.load(gpu, fm.config, fm.store, { ...opts, residency: 'streamed' });
    expect(streamed.weights.residency).toBe('streamed');
    expect(streamed.weights.hostBytes).toBe(estimateMemory(fm.config, { ...opts, weights: 'f32', training: true, residency: 'streamed' }).hostBytes);
    const a = await resident.run(batch, true);
    const b = await streamed.run(batch, true);
    expect(b.loss).toBe(a.loss);
    expect(relError(b.loss, (await ref.readF32('loss'))[0])).toBeLessThanOrEqual(1e-5);
    const ga = await resident.readAdapters();
    const gb = await streamed.readAdapters();
    for (let i = 0; i < ga.length; i++) {
      expect(gb[i].dA, ga[i].name).toEqual(ga[i].dA);
      expect(gb[i].dB, ga[i].name).toEqual(ga[i].dB);
      expect(relL2(gb[i].dA, await ref.readF32(`grad.${gb[i].name}.lora_A.weight`))).toBeLessThanOrEqual(1e-4);
    }
    resident.destroy();
    streamed.destroy();
  });

  it.each([
    ['every layer re-read from the files', 0],
    ['two layers in host memory, the rest re-read', 2],
  ])('%s: gradients equal the resident run bit for bit', async (_, cachedLayers) => {
    const { fm, B, T, adapters, batch } = await loraGradCase(fixtureDir('tiny-llama'));
    const opts = { batchSize: B, seqLen: T, lora: DEFAULT_LORA, adapters, checkpointing: true };
    const resident = await GpuModel.load(gpu, fm.config, fm.store, { ...opts, residency: 'resident' });
    const probe = await ModelWeights.load(gpu, fm.config, fm.store, { storage: 'f32', residency: 'streamed', hostCacheBytes: 0 });
    const layer = probe.layerBytes();
    probe.destroy();
    const streamed = await GpuModel.load(gpu, fm.config, fm.store, { ...opts, residency: 'streamed', hostCacheBytes: cachedLayers * layer });
    expect(streamed.weights.hostBytes).toBe(cachedLayers * layer);
    const plan = { ...opts, weights: 'f32' as const, training: true, residency: 'streamed' as const, hostCacheBytes: cachedLayers * layer };
    expect(estimateMemory(fm.config, plan)).toMatchObject({ hostBytes: cachedLayers * layer, rereadLayers: fm.config.numLayers - cachedLayers });
    const a = await resident.run(batch, true);
    const b = await streamed.run(batch, true);
    expect(b.loss).toBe(a.loss);
    expect(streamed.weights.rereadBytes).toBeGreaterThanOrEqual((fm.config.numLayers - cachedLayers) * layer);
    const ga = await resident.readAdapters();
    const gb = await streamed.readAdapters();
    for (let i = 0; i < ga.length; i++) expect(gb[i].dA, ga[i].name).toEqual(ga[i].dA);
    resident.destroy();
    streamed.destroy();
  });

  it('trains the same steps as the resident engine, uploading per step what the estimate says', async () => {
    const { fm, B, T, batch } = await loraGradCase(fixtureDir('tiny-llama'));
    const adapters = initLoraAdapters(fm.config, DEFAULT_LORA, 5);
    const opts = { batchSize: B, seqLen: T, lora: DEFAULT_LORA, adapters, checkpointing: true };
    const trainerOpts = { schedule: { lr: 1e-2, warmupSteps: 0, decay: 'constant' as const, totalSteps: 4 }, adamw: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 }, maxGradNorm: 1 };
    const losses: Record<string, number[]> = {};
    for (const residency of ['resident', 'streamed'] as const) {
      const model = await GpuModel.load(gpu, fm.config, fm.store, { ...opts, residency });
      const trainer = new Trainer(model, trainerOpts);
      losses[residency] = [];
      const uploads: number[] = [];
      for (let s = 0; s < 4; s++) {
        const before = model.weights.uploadedBytes;
        losses[residency].push((await trainer.trainStep(batch)).loss);
        uploads.push(model.weights.uploadedBytes - before);
      }
      const expected = estimateMemory(fm.config, { ...opts, weights: 'f32', training: true, residency }).uploadBytesPerStep;
      expect(uploads.slice(1)).toEqual([expected, expected, expected]);
      if (residency === 'streamed') expect(expected).toBe(2 * (fm.config.numLayers - 2) * model.weights.layerBytes());
      trainer.destroy();
      model.destroy();
    }
    expect(losses.streamed).toEqual(losses.resident);
    expect(losses.resident[3]).toBeLessThan(losses.resident[0]); // it learns
  });

  it('generates with the KV cache exactly as the resident weights do', async () => {
    const { fm } = await loraGradCase(fixtureDir('tiny-qwen2'));
    const logits: Float32Array[][] = [];
    for (const residency of ['resident', 'streamed'] as const) {
      const model = await GpuModel.load(gpu, fm.config, fm.store, { batchSize: 1, seqLen: 1, lora: null, residency });
      const gen = new Generator(model, 8);
      const got: Float32Array[] = [];
      for (const n of [1, 3, 5]) got.push(await gen.nextTokenLogits([5, 17, 42, 99, 7].slice(0, n)));
      logits.push(got);
      gen.destroy();
      model.destroy();
    }
    expect(logits[1]).toEqual(logits[0]);
  });

  it('is chosen when the resident job exceeds --max-gpu-memory, and the refusal names both ways when neither fits', async () => {
    const { fm, B, T, adapters } = await loraGradCase(fixtureDir('tiny-llama'));
    const opts = { batchSize: B, seqLen: T, lora: DEFAULT_LORA, adapters, checkpointing: true };
    const plan = { ...opts, weights: 'f32' as const, training: true };
    const resident = estimateMemory(fm.config, { ...plan, residency: 'resident' }).total;
    const streamed = estimateMemory(fm.config, { ...plan, residency: 'streamed' }).total;
    expect(streamed).toBeLessThan(resident);
    const between = Math.floor((resident + streamed) / 2);
    const model = await GpuModel.load(gpu, fm.config, fm.store, { ...opts, memoryBudget: between });
    expect(model.weights.residency).toBe('streamed');
    expect(model.allocatedBytes).toBe(streamed); // what the engine allocated is what the estimate said
    model.destroy();
    const refusal = await GpuModel.load(gpu, fm.config, fm.store, { ...opts, memoryBudget: streamed - 4 }).catch((e) => e);
    expect(refusal).toBeInstanceOf(GradPruneError);
    expect(refusal.code).toBe('memory');
    expect(refusal.message).toMatch(/streamed/);
  });
});

describe('shared weights', () => {
  it('several jobs run on one upload; destroying a job leaves the weights to the others', async () => {
    const { fm, B, T, batch } = await loraGradCase(fixtureDir('tiny-llama'));
    const weights = await ModelWeights.load(gpu, fm.config, fm.store, { storage: 'f32', residency: 'resident' });
    const uploaded = weights.allocatedBytes;
    const wide = GpuModel.create(weights, { batchSize: B, seqLen: T, lora: null });
    const narrow = GpuModel.create(weights, { batchSize: 1, seqLen: T, lora: null });
    expect(weights.allocatedBytes).toBe(uploaded); // jobs allocate activations only
    const all = await wide.run(batch);
    wide.destroy();
    const first = await narrow.run(sliceRows(batch, 0, 1));
    const alone = await GpuModel.load(gpu, fm.config, fm.store, { batchSize: 1, seqLen: T, lora: null });
    const expected = await alone.run(sliceRows(batch, 0, 1));
    expect(first.loss).toBe(expected.loss);
    expect(all.count).toBeGreaterThan(first.count);
    alone.destroy();
    narrow.destroy();
    weights.destroy();
  });
});
