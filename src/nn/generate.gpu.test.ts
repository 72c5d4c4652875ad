// Next-token logits with a KV cache: the logits at every position, fed one token at a time, equal Hugging Face's full
// forward pass (forward.safetensors); prefix reuse and rewinding equal the CPU reference (with LoRA); bad input.
// Generation over it (greedy and sampled, against the CPU reference's recompute path) is tested in src/eval/eval.gpu.test.ts.
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { fixtureDir } from '../testing/paths';
import { testGpu } from '../testing/gpu';
import { Generator } from './generate';
import { DEFAULT_LORA, loadLoraAdapters } from './lora';
import { GpuModel } from './model';
import { maxScaledAbsError } from './reference/compare';
import { loadFixtureModel, openReference } from './reference/fixture';
import { loraState, ReferenceModel } from './reference/model';

const gpu = await testGpu();

describe.each(['tiny-qwen2', 'tiny-mistral', 'tiny-qwen3'])('KV-cache generation on %s', (name) => {
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

describe('nextTokenLogits over the cache', () => {
  it('runs only the tokens past the cached prefix, rewinds where a sequence differs, and equals the CPU reference with LoRA', async () => {
    const dir = fixtureDir('tiny-llama');
    const { config, store, weights } = await loadFixtureModel(dir);
    const lg = await openReference(dir, 'lora_grad.safetensors');
    const adapters = await loadLoraAdapters(config, DEFAULT_LORA, (n) => lg.readF32(n));
    const model = await GpuModel.load(gpu, config, store, { batchSize: 1, seqLen: 1, lora: DEFAULT_LORA, adapters, training: false });
    const gen = new Generator(model, 12);
    const cpu = new ReferenceModel(weights, loraState(adapters, DEFAULT_LORA.rank, DEFAULT_LORA.alpha));
    const V = config.vocabSize;
    // Extend by one, extend by several, rewind to a shared first token, rewind to a shorter prefix, repeat, start anew.
    const sequences = [[1, 17, 300], [1, 17, 300, 5], [1, 17, 300, 5, 9, 200, 201], [1, 5, 9, 200, 201, 202, 33, 7, 8, 9, 10, 11], [1, 5], [1, 5], [44]];
    for (const ids of sequences) {
      const n = ids.length;
      const expected = cpu.forward(Int32Array.from(ids), 1, n).logits.subarray((n - 1) * V, n * V);
      expect(maxScaledAbsError(await gen.nextTokenLogits(ids), expected), ids.join(',')).toBeLessThanOrEqual(1e-4);
    }
    gen.destroy();
    model.destroy();
  });

  it('refuses tokens outside the vocabulary, skipped positions, sequences longer than the cache and caches longer than the model', async () => {
    const { config, store } = await loadFixtureModel(fixtureDir('tiny-llama'));
    const model = await GpuModel.load(gpu, config, store, { batchSize: 1, seqLen: 1, lora: null });
    const gen = new Generator(model, 4);
    const refusal = (p: Promise<unknown>) => p.then(() => null, (e) => e);
    let err = await refusal(gen.nextTokenLogits([1, 600]));
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.message).toMatch(/Token id 600 is outside the vocabulary \(0\.\.511\)/);
    err = await refusal(gen.nextTokenLogits([]));
    expect(err.message).toMatch(/at least one token/);
    err = await refusal(gen.nextTokenLogits([1, 2, 3, 4, 5]));
    expect(err).toBeInstanceOf(GradPruneError);
    expect(err.message).toMatch(/5 tokens does not fit the 4 positions/);
    await gen.nextLogits(1, 0);
    err = await refusal(gen.nextLogits(2, 2));
    expect(err).not.toBeInstanceOf(GradPruneError); // the caller's bug, not the person's input
    expect(err.message).toMatch(/Position 2 cannot be run: the cache holds positions 0\.\.0/);
    expect(() => new Generator(model, 4096)).toThrow(/between 1 and the model's 512 positions/);
    gen.destroy();
    model.destroy();
  });
});
