import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { DEMO, fixtureDir } from '../testing/paths';
import { linearShape, linearWeightName, normalizeConfig, type LinearModule } from './config';

const readConfig = async (dir: string) => JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));

// The table in ../shared/fixtures/README.md (and public/demo/README.md for the demo), copied by hand.
const TABLE = [
  { dir: fixtureDir('tiny-llama'), arch: 'LlamaForCausalLM', type: 'llama', layers: 6, hidden: 64, heads: 4, kv: 2, headDim: 16, inter: 176, vocab: 512, tied: false, qkvBias: false, dtype: 'F32', theta: 10000 },
  { dir: fixtureDir('tiny-qwen2'), arch: 'Qwen2ForCausalLM', type: 'qwen2', layers: 5, hidden: 96, heads: 6, kv: 2, headDim: 16, inter: 256, vocab: 512, tied: true, qkvBias: true, dtype: 'BF16', theta: 1e6 },
  { dir: fixtureDir('tiny-mistral'), arch: 'MistralForCausalLM', type: 'mistral', layers: 4, hidden: 80, heads: 5, kv: 1, headDim: 16, inter: 200, vocab: 512, tied: false, qkvBias: false, dtype: 'F16', theta: 1e6 },
  { dir: fixtureDir('tiny-qwen3'), arch: 'Qwen3ForCausalLM', type: 'qwen3', layers: 5, hidden: 64, heads: 4, kv: 2, headDim: 24, inter: 160, vocab: 512, tied: true, qkvBias: false, dtype: 'BF16', theta: 1e6 },
  { dir: fixtureDir('tiny-random-llama-2'), arch: 'LlamaForCausalLM', type: 'llama', layers: 2, hidden: 16, heads: 1, kv: 1, headDim: 16, inter: 64, vocab: 32000, tied: false, qkvBias: false, dtype: 'F16', theta: 10000 },
  { dir: DEMO, arch: 'LlamaForCausalLM', type: 'llama', layers: 8, hidden: 192, heads: 6, kv: 2, headDim: 32, inter: 512, vocab: 2048, tied: true, qkvBias: false, dtype: 'F16', theta: 10000 },
] as const;

describe('normalizeConfig on the fixtures and the demo', () => {
  for (const row of TABLE) {
    it(`${path.basename(row.dir)}: ${row.arch}, ${row.layers} layers, hidden ${row.hidden}`, async () => {
      const c = normalizeConfig(await readConfig(row.dir));
      expect(c.architecture).toBe(row.arch);
      expect(c.modelType).toBe(row.type);
      expect(c.numLayers).toBe(row.layers);
      expect(c.hiddenSize).toBe(row.hidden);
      expect(c.numHeads).toBe(row.heads);
      expect(c.numKvHeads).toBe(row.kv);
      expect(c.headDim).toBe(row.headDim);
      expect(c.intermediateSize).toBe(row.inter);
      expect(c.vocabSize).toBe(row.vocab);
      expect(c.tiedEmbeddings).toBe(row.tied);
      expect(c.declaredDType).toBe(row.dtype);
      expect(c.rope).toEqual({ type: 'default', theta: row.theta });
      expect(c.bias).toEqual({ q_proj: row.qkvBias, k_proj: row.qkvBias, v_proj: row.qkvBias, o_proj: false, gate_proj: false, up_proj: false, down_proj: false });
      expect(c.qkNorm).toBe(row.type === 'qwen3');
      expect(c.slidingWindow).toBe(null);
    });
  }
  it('gives the [out, in] shapes and checkpoint names of the linear modules', async () => {
    const c = normalizeConfig(await readConfig(fixtureDir('tiny-mistral')));
    const shapes: Record<LinearModule, [number, number]> = {
      q_proj: [80, 80], k_proj: [16, 80], v_proj: [16, 80], o_proj: [80, 80], gate_proj: [200, 80], up_proj: [200, 80], down_proj: [80, 200],
    };
    for (const [m, shape] of Object.entries(shapes)) expect(linearShape(c, m as LinearModule)).toEqual(shape);
    expect(linearWeightName(3, 'k_proj')).toBe('model.layers.3.self_attn.k_proj.weight');
    expect(linearWeightName(0, 'down_proj')).toBe('model.layers.0.mlp.down_proj.weight');
  });
});

const base = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 100,
};

function configError(json: unknown): GradPruneError {
  try {
    normalizeConfig(json);
  } catch (e) {
    expect(e).toBeInstanceOf(GradPruneError);
    expect((e as GradPruneError).code).toBe('config');
    expect((e as GradPruneError).message).toContain('config.json');
    return e as GradPruneError;
  }
  throw new Error('normalizeConfig accepted a bad config');
}

describe('normalizeConfig edge cases', () => {
  it('reads 4.x rope_scaling of type llama3 (Llama 3.1 style)', () => {
    const c = normalizeConfig({
      ...base,
      rope_theta: 500000.0,
      rope_scaling: { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
    });
    expect(c.rope).toEqual({ type: 'llama3', theta: 500000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  });
  it('reads 4.x rope_scaling of type linear, with the older "type" key', () => {
    expect(normalizeConfig({ ...base, rope_theta: 10000, rope_scaling: { type: 'linear', factor: 2.0 } }).rope).toEqual({ type: 'linear', theta: 10000, factor: 2 });
  });
  it('reads 5.x rope_parameters, which carry rope_theta themselves', () => {
    expect(normalizeConfig({ ...base, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } }).rope).toEqual({ type: 'default', theta: 1e6 });
    expect(normalizeConfig({ ...base, rope_parameters: { rope_type: 'linear', rope_theta: 5e5, factor: 4 } }).rope).toEqual({ type: 'linear', theta: 5e5, factor: 4 });
  });
  it('reads 5.x rope_parameters of type llama3', () => {
    const rope_parameters = { rope_type: 'llama3', rope_theta: 5e5, factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    expect(normalizeConfig({ ...base, rope_parameters }).rope).toEqual({ type: 'llama3', theta: 5e5, factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  });
  it('reads sliding windows only where the model uses them', () => {
    expect(normalizeConfig({ ...base, model_type: 'mistral', architectures: ['MistralForCausalLM'], sliding_window: 4096 }).slidingWindow).toBe(4096);
    expect(normalizeConfig({ ...base, model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], sliding_window: 4096, use_sliding_window: false }).slidingWindow).toBe(null);
    expect(normalizeConfig({ ...base, model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], sliding_window: 4096, use_sliding_window: true }).slidingWindow).toBe(4096);
  });
  it('defaults rope to theta 10000 when nothing is said', () => {
    expect(normalizeConfig(base).rope).toEqual({ type: 'default', theta: 10000 });
  });
  it('rejects unsupported or incomplete rope scaling, naming it', () => {
    expect(configError({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } }).message).toMatch(/rope type "yarn" is not supported.*default, linear, llama3/);
    expect(configError({ ...base, rope_scaling: { rope_type: 'llama3', factor: 8 } }).message).toMatch(/rope type "llama3" needs "lowFreqFactor"/);
    expect(configError({ ...base, rope_scaling: 'linear' }).message).toMatch(/"rope_scaling" must be an object/);
  });
  it('uses an explicit head_dim that differs from hidden_size / heads', () => {
    const c = normalizeConfig({ ...base, head_dim: 32 });
    expect(c.headDim).toBe(32);
    expect(linearShape(c, 'q_proj')).toEqual([128, 64]);
    expect(linearShape(c, 'o_proj')).toEqual([64, 128]);
  });
  it('falls back to multi-head attention without num_key_value_heads', () => {
    const { num_key_value_heads: _kv, ...noKv } = base;
    expect(normalizeConfig(noKv).numKvHeads).toBe(4);
    expect(normalizeConfig({ ...base, num_key_value_heads: null }).numKvHeads).toBe(4);
  });
  it('reads a Qwen3 config: per-head q/k norms, explicit head_dim, no biases by default', () => {
    const c = normalizeConfig({ ...base, architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', head_dim: 128, attention_bias: false, tie_word_embeddings: true });
    expect(c.qkNorm).toBe(true);
    expect(c.headDim).toBe(128);
    expect(c.tiedEmbeddings).toBe(true);
    expect(Object.values(c.bias).some(Boolean)).toBe(false);
    expect(c.maxPositionEmbeddings).toBe(32768);
  });
  it('follows transformers on biases: Llama attention_bias and mlp_bias, none for Mistral', () => {
    const llama = normalizeConfig({ ...base, attention_bias: true, mlp_bias: true });
    expect(Object.values(llama.bias).every(Boolean)).toBe(true);
    const mistral = normalizeConfig({ ...base, architectures: ['MistralForCausalLM'], model_type: 'mistral', attention_bias: true });
    expect(Object.values(mistral.bias).some(Boolean)).toBe(false);
  });
  it('lists the supported architectures when the model type is unsupported', () => {
    const e = configError({ ...base, architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' });
    expect(e.message).toMatch(/model type "gpt2" is not supported/);
    for (const arch of ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM', 'Qwen3ForCausalLM']) expect(e.message).toContain(arch);
    expect(configError({ architectures: ['MixtralForCausalLM'] }).message).toMatch(/architecture "MixtralForCausalLM" \(no "model_type"\) is not supported/);
  });
  it('rejects a supported model type with a head that is not a causal LM', () => {
    expect(configError({ ...base, architectures: ['LlamaForSequenceClassification'] }).message).toMatch(/"LlamaForSequenceClassification" is not a causal language model/);
  });
  it('rejects non-numeric, missing and inconsistent fields, naming the field', () => {
    expect(configError({ ...base, hidden_size: '64' }).message).toMatch(/"hidden_size" must be a positive integer \(found "64"\)/);
    expect(configError({ ...base, num_hidden_layers: 2.5 }).message).toMatch(/"num_hidden_layers" must be a positive integer/);
    expect(configError({ ...base, vocab_size: undefined }).message).toMatch(/"vocab_size" is missing/);
    expect(configError({ ...base, rms_norm_eps: 'small' }).message).toMatch(/"rms_norm_eps" must be a number/);
    expect(configError({ ...base, rope_theta: 'big' }).message).toMatch(/"rope_theta" must be a number/);
    expect(configError({ ...base, tie_word_embeddings: 'yes' }).message).toMatch(/"tie_word_embeddings" must be true or false/);
    expect(configError({ ...base, bos_token_id: 'x' }).message).toMatch(/"bos_token_id" must be a token id/);
    expect(configError({ ...base, num_attention_heads: 6 }).message).toMatch(/hidden_size 64 is not divisible by num_attention_heads 6/);
    expect(configError({ ...base, num_key_value_heads: 3 }).message).toMatch(/not a multiple of num_key_value_heads 3/);
    expect(configError({ ...base, hidden_act: 'gelu' }).message).toMatch(/hidden_act "gelu" is not supported/);
    expect(configError([1, 2]).message).toMatch(/is not a JSON object/);
  });
  it('keeps eos lists and the raw config for export', () => {
    const c = normalizeConfig({ ...base, eos_token_id: [128001, 128008], custom: 1 });
    expect(c.eosTokenId).toEqual([128001, 128008]);
    expect(c.raw.custom).toBe(1);
  });
});
