// The merge arithmetic against a plain triple loop, and the adapter checks that name what does not fit the model.
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { normalizeConfig } from '../model/config';
import { DEFAULT_LORA, initLoraAdapters } from '../nn/lora';
import { seededRandom } from '../random';
import { adaptersByWeight, mergeLoraDelta } from './merge-adapter';

const config = normalizeConfig({
  model_type: 'llama', architectures: ['LlamaForCausalLM'], num_hidden_layers: 2, hidden_size: 16, num_attention_heads: 2,
  num_key_value_heads: 1, intermediate_size: 24, vocab_size: 32, rms_norm_eps: 1e-6, max_position_embeddings: 64,
});

describe('mergeLoraDelta', () => {
  it('is W + scale·B·A, element by element', () => {
    const rand = seededRandom(5);
    const [out, inp, rank, scale] = [7, 5, 3, 2.5];
    const fill = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);
    const W = fill(out * inp), A = fill(rank * inp), B = fill(out * rank);
    const got = mergeLoraDelta(W, A, B, { out, inp, rank }, scale);
    for (let o = 0; o < out; o++) {
      for (let i = 0; i < inp; i++) {
        let d = 0;
        for (let r = 0; r < rank; r++) d += B[o * rank + r] * A[r * inp + i];
        expect(got[o * inp + i]).toBeCloseTo(W[o * inp + i] + scale * d, 6);
      }
    }
    expect(mergeLoraDelta(W, A, new Float32Array(out * rank), { out, inp, rank }, scale)).toEqual(W); // B = 0: unchanged
  });
});

describe('adaptersByWeight', () => {
  const adapters = initLoraAdapters(config, DEFAULT_LORA, 0);

  it('maps every adapter to the weight it adapts', () => {
    const m = adaptersByWeight(config, DEFAULT_LORA, adapters);
    expect(m.size).toBe(14);
    expect(m.get('model.layers.1.mlp.down_proj.weight')).toBe(adapters[13]);
  });

  it('refuses an adapter for a layer the model does not have', () => {
    const e = (() => { try { adaptersByWeight({ ...config, numLayers: 1 }, DEFAULT_LORA, adapters); } catch (err) { return err; } })() as GradPruneError;
    expect(e).toBeInstanceOf(GradPruneError);
    expect(e.message).toMatch(/model\.layers\.1\.self_attn\.q_proj is for layer 1, but the model has 1 layers .*trained on a different \(e\.g\. unpruned\) model/);
  });

  it('refuses values of the wrong rank, naming the adapter', () => {
    const wrong = adapters.map((a, i) => (i === 2 ? { ...a, A: new Float32Array(4 * a.inFeatures) } : a));
    expect(() => adaptersByWeight(config, DEFAULT_LORA, wrong)).toThrow(/model\.layers\.0\.self_attn\.v_proj has 64 values in A .* rank 8 on this model needs \[8, 16\]/);
  });

  it('refuses an adapter on a module the settings do not target, and a duplicate', () => {
    expect(() => adaptersByWeight(config, { ...DEFAULT_LORA, modules: ['q_proj'] }, adapters)).toThrow(/k_proj adapts k_proj, which the LoRA settings do not target/);
    expect(() => adaptersByWeight(config, DEFAULT_LORA, [...adapters, adapters[0]])).toThrow(/Two LoRA adapters are given for model\.layers\.0\.self_attn\.q_proj/);
  });
});
