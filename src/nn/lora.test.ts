import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { normalizeConfig } from '../model/config';
import { adapterName, DEFAULT_LORA, initLoraAdapters, loadLoraAdapters, validateLoraConfig } from './lora';

const config = normalizeConfig({
  model_type: 'llama', hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
  intermediate_size: 176, vocab_size: 512,
});

describe('LoRA adapters', () => {
  it('names adapters as PEFT does', () => {
    expect(adapterName(3, 'q_proj')).toBe('model.layers.3.self_attn.q_proj');
    expect(adapterName(0, 'down_proj')).toBe('model.layers.0.mlp.down_proj');
  });

  it('initialises A uniformly within ±1/sqrt(in) and B to zero, reproducibly from the seed', () => {
    const a = initLoraAdapters(config, DEFAULT_LORA, 7);
    expect(a).toHaveLength(2 * 7);
    const down = a.find((x) => x.module === 'down_proj')!;
    expect([down.outFeatures, down.inFeatures]).toEqual([64, 176]);
    expect(down.A).toHaveLength(8 * 176);
    const bound = 1 / Math.sqrt(176);
    expect(Math.max(...down.A.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...down.A.map(Math.abs))).toBeGreaterThan(0.9 * bound);
    expect(down.B.every((v) => v === 0)).toBe(true);
    expect(initLoraAdapters(config, DEFAULT_LORA, 7)[6].A).toEqual(down.A);
    expect(initLoraAdapters(config, DEFAULT_LORA, 8)[6].A).not.toEqual(down.A);
  });

  it('targets only the chosen modules', () => {
    const a = initLoraAdapters(config, { ...DEFAULT_LORA, modules: ['q_proj', 'v_proj'] });
    expect(a.map((x) => x.name)).toEqual([
      'model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj',
      'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj',
    ]);
  });

  it('refuses a bad rank, alpha or module with a GradPruneError naming the setting', () => {
    const bad = (c: Parameters<typeof validateLoraConfig>[0], subject: string) => {
      try {
        validateLoraConfig(c);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(GradPruneError);
        expect((e as GradPruneError).subject).toBe(subject);
      }
    };
    bad({ ...DEFAULT_LORA, rank: 0 }, 'rank');
    bad({ ...DEFAULT_LORA, rank: 2.5 }, 'rank');
    bad({ ...DEFAULT_LORA, alpha: -1 }, 'alpha');
    bad({ ...DEFAULT_LORA, modules: [] }, 'modules');
    bad({ ...DEFAULT_LORA, modules: ['qkv_proj' as never] }, 'modules');
  });

  it('refuses given adapter values of the wrong rank, naming the tensor', async () => {
    const get = async (n: string) => new Float32Array(n.endsWith('lora_A.weight') ? 4 * 64 : 64 * 4);
    await expect(loadLoraAdapters(config, DEFAULT_LORA, get)).rejects.toThrow(/model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight has 256 values; rank 8 needs \[8, 64\]/);
  });
});
