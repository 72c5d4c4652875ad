// The GPU engine with f16 weight storage (gpu-f16 tier: Dawn on lavapipe, which has shader-f16; skipped, with the
// reason, on an adapter without it). tiny-mistral and tiny-random-llama-2 are stored F16, so f16 storage holds
// their weights exactly; the kernels accumulate in f32. The Hugging Face references were computed in f32 from the
// same values, so only the order of f32 sums differs from the gpu tier (measured on lavapipe: ~2e-6 everywhere,
// as in f32; an F32 checkpoint rounded to f16 is off by ~2e-3). Tolerances (looser than the f32 tier's):
//   logits: max abs error ≤ 2e-4 · (1 + |ref|)        (f32 tier: 1e-4)
//   loss: relative 1e-4                               (f32 tier: 1e-5)
//   LoRA gradients: relative L2 ≤ 5e-4 per tensor     (f32 tier: 1e-4)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../gpu/device';
import { f16TestGpu } from '../testing/lavapipe';
import { fixtureDir } from '../testing/paths';
import { DEFAULT_LORA, loadLoraAdapters } from './lora';
import { estimateMemory } from './memory';
import { GpuModel, type Batch } from './model';
import { maxScaledAbsError, relError, relL2 } from './reference/compare';
import { loadFixtureModel, openReference } from './reference/fixture';

const LOGITS_TOL = 2e-4;
const LOSS_TOL = 1e-4;
const GRAD_TOL = 5e-4;

let gpu: Gpu;
let skip: string | null = null;
beforeAll(async () => {
  ({ gpu, skip } = await f16TestGpu());
});
afterAll(() => gpu?.device.destroy());


describe.each(['tiny-mistral', 'tiny-random-llama-2'])('f16 weight storage on %s (stored F16)', (name) => {
  it("'auto' stores the weights as f16 on this adapter: the memory the estimate predicts, and the reference logits", async (ctx) => {
    if (skip) return ctx.skip(skip);
    const dir = fixtureDir(name);
    const fm = await loadFixtureModel(dir);
    const ref = await openReference(dir, 'forward.safetensors');
    const [B, T] = ref.info('input_ids').shape;
    const model = await GpuModel.load(gpu, fm.config, fm.store, { batchSize: B, seqLen: T, lora: null, weights: 'auto' });
    try {
      expect(model.weightStorage).toBe('f16');
      const plan = { batchSize: B, seqLen: T, lora: null, checkpointing: false, training: false };
      expect(model.allocatedBytes).toBe(estimateMemory(fm.config, { ...plan, weights: 'f16' }).total);
      expect(model.weightBytes()).toBeLessThan(estimateMemory(fm.config, { ...plan, weights: 'f32' }).weights * 0.6);
      await model.run({ B, T, inputIds: await ref.readI32('input_ids'), lossMask: new Int32Array(B * T), padTokenId: 0 });
      expect(maxScaledAbsError(await model.readLogits(), await ref.readF32('logits'))).toBeLessThanOrEqual(LOGITS_TOL);
    } finally {
      model.destroy();
    }
  });
});

describe('f16 weight storage with LoRA on tiny-mistral', () => {
  it('reproduces the loss and every LoRA gradient of lora_grad.safetensors', async (ctx) => {
    if (skip) return ctx.skip(skip);
    const dir = fixtureDir('tiny-mistral');
    const fm = await loadFixtureModel(dir);
    const ref = await openReference(dir, 'lora_grad.safetensors');
    const [B, T] = ref.info('input_ids').shape;
    const adapters = await loadLoraAdapters(fm.config, DEFAULT_LORA, (n) => ref.readF32(n));
    const batch: Batch = { B, T, inputIds: await ref.readI32('input_ids'), lossMask: await ref.readI32('loss_mask'), padTokenId: 0 };
    const model = await GpuModel.load(gpu, fm.config, fm.store, { batchSize: B, seqLen: T, lora: DEFAULT_LORA, adapters, weights: 'f16' });
    try {
      expect(model.weightStorage).toBe('f16');
      expect(model.allocatedBytes).toBe(estimateMemory(fm.config, { batchSize: B, seqLen: T, lora: DEFAULT_LORA, weights: 'f16', checkpointing: false, training: true }).total);
      const { loss } = await model.run(batch, true);
      expect(relError(loss, (await ref.readF32('loss'))[0])).toBeLessThanOrEqual(LOSS_TOL);
      const got = await model.readAdapters();
      expect(got).toHaveLength(fm.config.numLayers * 7);
      for (const a of got) {
        expect(relL2(a.dA, await ref.readF32(`grad.${a.name}.lora_A.weight`)), `${a.name} dA`).toBeLessThanOrEqual(GRAD_TOL);
        expect(relL2(a.dB, await ref.readF32(`grad.${a.name}.lora_B.weight`)), `${a.name} dB`).toBeLessThanOrEqual(GRAD_TOL);
      }
    } finally {
      model.destroy();
    }
  });

  it("an explicit 'f32' stays f32 on an adapter with shader-f16", async (ctx) => {
    if (skip) return ctx.skip(skip);
    const fm = await loadFixtureModel(fixtureDir('tiny-mistral'));
    const model = await GpuModel.load(gpu, fm.config, fm.store, { batchSize: 1, seqLen: 4, lora: null, weights: 'f32' });
    expect(model.weightStorage).toBe('f32');
    expect(model.weightBytes()).toBe(estimateMemory(fm.config, { batchSize: 1, seqLen: 4, lora: null, weights: 'f32', checkpointing: false, training: false }).weights);
    model.destroy();
  });
});
