import { describe, expect, it } from 'vitest';
import { normalizeConfig } from '../model/config';
import { makePlan } from './plan';
import { prunedTensorNames } from './prune';

const config = normalizeConfig({ model_type: 'llama', hidden_size: 32, num_hidden_layers: 4, num_attention_heads: 2, intermediate_size: 48, vocab_size: 40 });

describe('prunedTensorNames', () => {
  it('drops pruned layers (norms included), renumbers kept ones, keeps the rest in order', () => {
    const plan = makePlan([9, 1, 5, 3], config, { prune: 2, merge: 1 }); // prune 1, 3; keep 0, 2
    const names = [
      'model.embed_tokens.weight',
      'model.layers.0.input_layernorm.weight',
      'model.layers.1.input_layernorm.weight',
      'model.layers.2.mlp.up_proj.weight',
      'model.layers.3.self_attn.q_proj.weight',
      'model.norm.weight',
      'lm_head.weight',
    ];
    expect(prunedTensorNames(plan, names)).toEqual([
      { name: 'model.embed_tokens.weight', from: 'model.embed_tokens.weight' },
      { name: 'model.layers.0.input_layernorm.weight', from: 'model.layers.0.input_layernorm.weight' },
      { name: 'model.layers.1.mlp.up_proj.weight', from: 'model.layers.2.mlp.up_proj.weight' },
      { name: 'model.norm.weight', from: 'model.norm.weight' },
      { name: 'lm_head.weight', from: 'lm_head.weight' },
    ]);
  });
  it('renumbers Qwen3\'s per-head q/k norms with their layer and drops those of pruned layers', () => {
    const plan = makePlan([9, 1, 5, 3], config, { prune: 2, merge: 1 }); // prune 1, 3; keep 0, 2
    const names = [0, 1, 2, 3].flatMap((l) => [`model.layers.${l}.self_attn.q_norm.weight`, `model.layers.${l}.self_attn.k_norm.weight`]);
    expect(prunedTensorNames(plan, names)).toEqual([
      { name: 'model.layers.0.self_attn.q_norm.weight', from: 'model.layers.0.self_attn.q_norm.weight' },
      { name: 'model.layers.0.self_attn.k_norm.weight', from: 'model.layers.0.self_attn.k_norm.weight' },
      { name: 'model.layers.1.self_attn.q_norm.weight', from: 'model.layers.2.self_attn.q_norm.weight' },
      { name: 'model.layers.1.self_attn.k_norm.weight', from: 'model.layers.2.self_attn.k_norm.weight' },
    ]);
  });
  it('refuses a layer beyond the config with a tensor error naming it', () => {
    const plan = makePlan([9, 1, 5, 3], config, { prune: 1 });
    expect(() => prunedTensorNames(plan, ['model.layers.7.mlp.up_proj.weight'])).toThrow(/"model.layers.7.mlp.up_proj.weight" but the config declares 4 layers/);
  });
});
