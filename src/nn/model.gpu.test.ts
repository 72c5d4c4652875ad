// The GPU engine against Hugging Face's numbers: logits, loss + every LoRA gradient (with and without gradient
// checkpointing), right-padded batches, the memory estimate against what is allocated, and bad input.
import { describe, expect, it } from 'vitest';
import { batchOfRows } from '../data/batch';
import { GradPruneError } from '../errors';
import { normalizeConfig } from '../model/config';
import { FIXTURE_MODELS, fixtureDir } from '../testing/paths';
import { testGpu } from '../testing/gpu';
import { Generator } from './generate';
import { DEFAULT_LORA, initLoraAdapters } from './lora';
import { estimateMemory } from './memory';
import { GpuModel } from './model';
import { maxScaledAbsError, relError, relL2 } from './reference/compare';
import { loadFixtureModel, loraGradCase, openReference } from './reference/fixture';
import { loraState, ReferenceModel } from './reference/model';

const gpu = await testGpu();

async function expectFixtureGrads(model: GpuModel, ref: Awaited<ReturnType<typeof openReference>>) {
  const got = await model.readAdapters();
  expect(got).toHaveLength(model.config.numLayers * 7);
  for (const a of got) {
    expect(relL2(a.dA, await ref.readF32(`grad.${a.name}.lora_A.weight`)), `${a.name} dA`).toBeLessThanOrEqual(1e-4);
    expect(relL2(a.dB, await ref.readF32(`grad.${a.name}.lora_B.weight`)), `${a.name} dB`).toBeLessThanOrEqual(1e-4);
  }
}

describe.each(FIXTURE_MODELS)('GPU engine on %s', (name) => {
  it('reproduces the logits of forward.safetensors', async () => {
    const dir = fixtureDir(name);
    const fm = await loadFixtureModel(dir);
    const ref = await openReference(dir, 'forward.safetensors');
    const [B, T] = ref.info('input_ids').shape;
    const model = await GpuModel.load(gpu, fm.config, fm.store, { batchSize: B, seqLen: T, lora: null });
    await model.run({ B, T, inputIds: await ref.readI32('input_ids'), lossMask: new Int32Array(B * T), padTokenId: 0 });
    expect(maxScaledAbsError(await model.readLogits(), await ref.readF32('logits'))).toBeLessThanOrEqual(1e-4);
    model.destroy();
  });

  it('reproduces the loss and every LoRA gradient of lora_grad.safetensors', async () => {
    const { fm, ref, B, T, adapters, batch } = await loraGradCase(fixtureDir(name));
    const model = await GpuModel.load(gpu, fm.config, fm.store, { batchSize: B, seqLen: T, lora: DEFAULT_LORA, adapters });
    const { loss } = await model.run(batch, true);
    expect(relError(loss, (await ref.readF32('loss'))[0])).toBeLessThanOrEqual(1e-5);
    await expectFixtureGrads(model, ref);
    model.destroy();
  });
});

describe('GPU engine options', () => {
  it('gives the fixture gradients with gradient checkpointing, in less memory', async () => {
    const { fm, ref, B, T, adapters, batch } = await loraGradCase(fixtureDir('tiny-qwen2'));
    const model = await GpuModel.load(gpu, fm.config, fm.store, { batchSize: B, seqLen: T, lora: DEFAULT_LORA, adapters, checkpointing: true });
    const { loss } = await model.run(batch, true);
    expect(relError(loss, (await ref.readF32('loss'))[0])).toBeLessThanOrEqual(1e-5);
    await expectFixtureGrads(model, ref);
    const plain = estimateMemory(fm.config, { batchSize: B, seqLen: T, lora: DEFAULT_LORA, weights: 'f32', checkpointing: false, training: true });
    expect(model.allocatedBytes).toBeLessThan(plain.total);
    model.destroy();
  });

  it('right-pads rows of different lengths: loss and gradients equal the reference on the padded batch', async () => {
    const { fm, B, T, adapters, batch } = await loraGradCase(fixtureDir('tiny-llama'));
    const lengths = [T, 12, 7];
    const rowOf = (a: Int32Array, b: number) => a.subarray(b * T, b * T + lengths[b]);
    const ragged = batchOfRows(lengths.map((_, b) => rowOf(batch.inputIds, b)), lengths.map((_, b) => rowOf(batch.lossMask, b))); // padded with id 0
    const model = await GpuModel.load(gpu, fm.config, fm.store, { batchSize: B, seqLen: T, lora: DEFAULT_LORA, adapters });
    const { loss, count } = await model.run(ragged, true);

    const { inputIds: ids, lossMask: mask } = ragged;
    const expected = new ReferenceModel(fm.weights, loraState(adapters, DEFAULT_LORA.rank, DEFAULT_LORA.alpha)).lossAndGrads(ids, mask, B, T);
    let counted = 0;
    for (let b = 0; b < B; b++) for (let t = 1; t < T; t++) counted += mask[b * T + t];
    expect(count).toBe(counted);
    expect(relError(loss, expected.loss)).toBeLessThanOrEqual(1e-5);
    for (const a of await model.readAdapters()) {
      expect(relL2(a.dA, expected.grads.get(a.name)!.dA), a.name).toBeLessThanOrEqual(1e-4);
      expect(relL2(a.dB, expected.grads.get(a.name)!.dB), a.name).toBeLessThanOrEqual(1e-4);
    }
    model.destroy();
  });

  // f16 weight storage (on an adapter with shader-f16): model.f16.gpu.test.ts, the gpu-f16 tier.

  it('trains adapters on a subset of modules at another rank: loss and gradients equal the CPU reference', async () => {
    const { fm, B, T, batch } = await loraGradCase(fixtureDir('tiny-qwen2'));
    const lora = { rank: 3, alpha: 6, modules: ['k_proj', 'o_proj', 'up_proj'] as const };
    const adapters = initLoraAdapters(fm.config, lora, 5);
    for (const a of adapters) a.B.forEach((_, i) => (a.B[i] = Math.sin(i + a.layer) * 0.05)); // B ≠ 0, so gA ≠ 0
    const model = await GpuModel.load(gpu, fm.config, fm.store, { batchSize: B, seqLen: T, lora, adapters });
    const { loss } = await model.run(batch, true);
    const { inputIds: ids, lossMask: mask } = batch;
    const expected = new ReferenceModel(fm.weights, loraState(adapters, lora.rank, lora.alpha)).lossAndGrads(ids, mask, B, T);
    expect(relError(loss, expected.loss)).toBeLessThanOrEqual(1e-5);
    const got = await model.readAdapters();
    expect(got.map((a) => a.name)).toEqual(adapters.map((a) => a.name));
    expect(got).toHaveLength(fm.config.numLayers * 3);
    for (const a of got) {
      expect(relL2(a.dA, expected.grads.get(a.name)!.dA), a.name).toBeLessThanOrEqual(1e-4);
      expect(relL2(a.dB, expected.grads.get(a.name)!.dB), a.name).toBeLessThanOrEqual(1e-4);
    }
    model.destroy();
  });

  it('allocates exactly what the memory estimate predicts', async () => {
    const fm = await loadFixtureModel(fixtureDir('tiny-mistral'));
    const lora = { ...DEFAULT_LORA, rank: 4, modules: ['q_proj', 'v_proj', 'down_proj'] as const };
    for (const plan of [
      { batchSize: 2, seqLen: 9, lora, weights: 'f32' as const, checkpointing: false, training: true },
      { batchSize: 3, seqLen: 5, lora, weights: 'f32' as const, checkpointing: true, training: true },
      { batchSize: 1, seqLen: 7, lora: null, weights: 'f32' as const, checkpointing: false, training: false },
    ]) {
      const adapters = plan.lora ? initLoraAdapters(fm.config, plan.lora, 3) : undefined;
      const model = await GpuModel.load(gpu, fm.config, fm.store, { ...plan, adapters });
      expect(model.allocatedBytes, JSON.stringify(plan)).toBe(estimateMemory(fm.config, plan).total);
      model.destroy();
    }
  });

  it('refuses bad options and batches with a GradPruneError naming the problem', async () => {
    const fm = await loadFixtureModel(fixtureDir('tiny-llama'));
    const load = (o: object) => GpuModel.load(gpu, fm.config, fm.store, { batchSize: 1, seqLen: 8, lora: null, ...o });
    await expect(load({ seqLen: 600 })).rejects.toThrow(/Sequence length 600 is longer than the model's 512 positions/);
    await expect(load({ batchSize: 0 })).rejects.toThrow(GradPruneError);
    await expect(load({ lora: DEFAULT_LORA, adapters: [] })).rejects.toThrow(/No initial values for the LoRA adapter model\.layers\.0\.self_attn\.q_proj/);
    if (!gpu.adapter.shaderF16) {
      await expect(load({ weights: 'f16' })).rejects.toThrow(/f16 weights need the shader-f16 feature, which this GPU adapter \(.+\) does not offer/);
      const auto = await load({ weights: 'auto' });
      expect(auto.weightStorage).toBe('f32');
      auto.destroy();
    }
    const refusal = await load({ lora: DEFAULT_LORA, adapters: initLoraAdapters(fm.config, DEFAULT_LORA), memoryBudget: 1_000_000 }).catch((e) => e);
    expect(refusal).toBeInstanceOf(GradPruneError);
    expect(refusal.code).toBe('memory');
    expect(refusal.message).toMatch(/needs \d\.\d+ MiB of GPU memory even with the weights streamed layer by layer \(weights .*\), more than the 977 KiB available/);

    const model = await load({ batchSize: 2 });
    expect(() => model.setBatch(batchOfRows([[1, 2, 512]], [[1, 1, 1]]))).toThrow(/Token id 512 in row 0, position 2/);
    expect(() => model.setBatch(batchOfRows([new Array(9).fill(1)], [new Array(9).fill(1)]))).toThrow(/Row 0 of the batch has 9 tokens/);
    expect(() => model.setBatch(batchOfRows([[1], [1], [1]], [[1], [1], [1]]))).toThrow(/at most 2/);
    expect(() => model.setBatch(batchOfRows([[1, 2]], [[1, 1]], 512))).toThrow(/pad token id 512 is outside the vocabulary/);
    await expect(model.run(batchOfRows([[1, 2]], [[1, 1]]), true)).rejects.toThrow(/inference/);
    model.destroy();
  });
});

describe('sliding-window attention (Mistral with sliding_window set)', () => {
  it('training forward/backward and KV-cache generation agree with the CPU reference', async () => {
    const { fm, B, T, adapters, batch } = await loraGradCase(fixtureDir('tiny-mistral'));
    const config = normalizeConfig({ ...fm.config.raw, sliding_window: 6 });
    expect(config.slidingWindow).toBe(6);
    const weights = { ...fm.weights, config };
    const cpu = new ReferenceModel(weights, loraState(adapters, DEFAULT_LORA.rank, DEFAULT_LORA.alpha));
    const { inputIds: ids, lossMask: mask } = batch;
    const expected = cpu.lossAndGrads(ids, mask, B, T);
    const full = new ReferenceModel(fm.weights, loraState(adapters, DEFAULT_LORA.rank, DEFAULT_LORA.alpha)).lossAndGrads(ids, mask, B, T);
    expect(relError(expected.loss, full.loss)).toBeGreaterThan(1e-4); // the window changes the result at T = 20

    const model = await GpuModel.load(gpu, config, fm.store, { batchSize: B, seqLen: T, lora: DEFAULT_LORA, adapters });
    const { loss } = await model.run(batch, true);
    expect(relError(loss, expected.loss)).toBeLessThanOrEqual(1e-5);
    for (const a of await model.readAdapters()) {
      expect(relL2(a.dA, expected.grads.get(a.name)!.dA), a.name).toBeLessThanOrEqual(1e-4);
      expect(relL2(a.dB, expected.grads.get(a.name)!.dB), a.name).toBeLessThanOrEqual(1e-4);
    }
    model.destroy();

    const logits = cpu.forward(ids.subarray(0, T), 1, T).logits;
    const one = await GpuModel.load(gpu, config, fm.store, { batchSize: 1, seqLen: 1, lora: DEFAULT_LORA, adapters, training: false });
    const gen = new Generator(one, T);
    const V = config.vocabSize;
    for (let t = 0; t < T; t++) {
      expect(maxScaledAbsError(await gen.nextLogits(ids[t], t), logits.subarray(t * V, (t + 1) * V)), `position ${t}`).toBeLessThanOrEqual(1e-4);
    }
    gen.destroy();
    one.destroy();
  });
});
