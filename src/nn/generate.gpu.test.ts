// Generation with a KV cache: the logits at every position, fed one token at a time, equal Hugging Face's full
// forward pass (forward.safetensors); greedy continuation equals the CPU reference's argmax chain; bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { requestGpu, type Gpu } from '../gpu/device';
import { fixtureDir } from '../testing/paths';
import { Generator, pickToken } from './generate';
import { DEFAULT_LORA, loadLoraAdapters } from './lora';
import { GpuModel } from './model';
import { maxScaledAbsError } from './reference/compare';
import { loadFixtureModel, openReference } from './reference/fixture';
import { loraState, ReferenceModel } from './reference/model';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await requestGpu();
});
afterAll(() => gpu?.device.destroy());

describe.each(['tiny-qwen2', 'tiny-mistral'])('KV-cache generation on %s', (name) => {
  it('gives the logits of forward.safetensors at every position, one token at a time', async () => {
    const dir = fixtureDir(name);
    const { config, store } = await loadFixtureModel(dir);
    const ref = await openReference(dir, 'forward.safetensors');
    const [, T] = ref.info('input_ids').shape;
    const ids = await ref.readI32('input_ids');
    const logits = await ref.readF32('logits');
    const V = config.vocabSize;
    const model = await GpuModel.load(gpu, config, store, { batchSize: 1, seqLen: 1, lora: null });
    const gen = new Generator(model, T);
    for (let t = 0; t < T; t++) {
      const got = await gen.nextLogits(ids[T + t], t); // the second row of the fixture
      expect(maxScaledAbsError(got, logits.subarray((T + t) * V, (T + t + 1) * V)), `position ${t}`).toBeLessThanOrEqual(1e-4);
    }
    gen.destroy();
    model.destroy();
  });
});

describe('generation', () => {
  it('greedy continuation with LoRA adapters equals the CPU reference argmax chain', async () => {
    const dir = fixtureDir('tiny-llama');
    const { config, store, weights } = await loadFixtureModel(dir);
    const lg = await openReference(dir, 'lora_grad.safetensors');
    const adapters = await loadLoraAdapters(config, DEFAULT_LORA, (n) => lg.readF32(n));
    const prompt = Array.from((await lg.readI32('input_ids')).subarray(0, 6));
    const model = await GpuModel.load(gpu, config, store, { batchSize: 1, seqLen: 1, lora: DEFAULT_LORA, adapters, training: false });
    const gen = new Generator(model, 16);
    const got = await gen.generate(prompt, { maxNewTokens: 8 });

    const cpu = new ReferenceModel(weights, loraState(adapters, DEFAULT_LORA.rank, DEFAULT_LORA.alpha));
    const seq = [...prompt];
    for (let n = 0; n < 8; n++) {
      const { logits } = cpu.forward(Int32Array.from(seq), 1, seq.length);
      seq.push(pickToken(logits.subarray((seq.length - 1) * config.vocabSize), {}, Math.random));
    }
    expect(got).toEqual(seq.slice(prompt.length));
    gen.destroy();
    model.destroy();
  });

  it('samples reproducibly from a seed, stops at a stop token, and refuses prompts that do not fit', async () => {
    const { config, store } = await loadFixtureModel(fixtureDir('tiny-llama'));
    const model = await GpuModel.load(gpu, config, store, { batchSize: 1, seqLen: 1, lora: null });
    const gen = new Generator(model, 12);
    const opts = { maxNewTokens: 6, temperature: 1.5, topK: 50, topP: 0.95, seed: 11 };
    const a = await gen.generate([1, 42, 7], opts);
    expect(a).toHaveLength(6);
    expect(await gen.generate([1, 42, 7], opts)).toEqual(a);
    expect(await gen.generate([1, 42, 7], { ...opts, stopTokens: [a[1]] })).toEqual(a.slice(0, 2));
    await expect(gen.generate([1, 2, 3, 4, 5, 6, 7], { maxNewTokens: 6 })).rejects.toThrow(/exceed the 12 positions/);
    await expect(gen.generate([1, 600], { maxNewTokens: 1 })).rejects.toThrow(GradPruneError);
    expect(() => new Generator(model, 4096)).toThrow(/between 1 and the model's 512 positions/);
    gen.destroy();
    model.destroy();
  });
});
