// Random-weight models are read by the same code as real checkpoints: the config normalises, every tensor the
// engine asks for is in the store with its shape, and the Llama-3.2-1B shape has that model's published size.
import { describe, expect, it } from 'vitest';
import { LINEAR_MODULES, linearShape, linearWeightName } from '../model/config';
import { configJson, LLAMA_3_2_1B, matmulParams, randomBatch, randomConfig, randomStore } from './random-model';

describe('random models', () => {
  it('Llama-3.2-1B shape: 1,235,814,400 parameters (the Hugging Face checkpoint), llama3 RoPE, tied embeddings', () => {
    const c = randomConfig(LLAMA_3_2_1B);
    expect(c.headDim).toBe(64);
    expect(c.tiedEmbeddings).toBe(true);
    expect(c.rope).toMatchObject({ type: 'llama3', theta: 500000, factor: 32 });
    const norms = (2 * c.numLayers + 1) * c.hiddenSize;
    expect(matmulParams(c) + norms).toBe(1_235_814_400); // lm_head is the embedding: counted once
  });

  it('stores every tensor the engine loads, BF16, with the config’s shapes; norms are 1', async () => {
    const shape = { name: 't', layers: 2, hidden: 32, heads: 4, kvHeads: 2, intermediate: 48, vocab: 50 };
    const c = randomConfig(shape);
    const store = await randomStore(c, 5);
    expect(store.info('model.embed_tokens.weight').shape).toEqual([50, 32]);
    expect(store.info('lm_head.weight').shape).toEqual([50, 32]);
    for (let l = 0; l < 2; l++) {
      for (const m of LINEAR_MODULES) expect(store.info(linearWeightName(l, m)).shape).toEqual(linearShape(c, m));
      expect(Array.from(await store.readF32(`model.layers.${l}.input_layernorm.weight`))).toEqual(new Array(32).fill(1));
    }
    const w = await store.readF32(linearWeightName(1, 'down_proj'));
    expect(store.info(linearWeightName(1, 'down_proj')).dtype).toBe('BF16');
    const std = Math.sqrt(w.reduce((s, x) => s + x * x, 0) / w.length);
    expect(std).toBeGreaterThan(0.015);
    expect(std).toBeLessThan(0.025);
    const tied = randomConfig({ ...shape, tied: true });
    expect(configJson({ ...shape, tied: true }).tie_word_embeddings).toBe(true);
    expect((await randomStore(tied)).has('lm_head.weight')).toBe(false); // as a tied Hugging Face checkpoint
  });

  it('batches stay inside the vocabulary and count every position', () => {
    const b = randomBatch(3, 17, 11, 1);
    expect([b.B, b.T, b.inputIds.length]).toEqual([3, 17, 3 * 17]);
    for (const id of b.inputIds) expect(id >= 0 && id < 11).toBe(true);
    expect(b.lossMask.length === 3 * 17 && b.lossMask.every((x) => x === 1)).toBe(true);
  });
});
