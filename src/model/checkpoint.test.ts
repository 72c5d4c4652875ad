import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { DEMO, FIXTURE_MODELS, fixtureDir } from '../testing/paths';
import { expectedTensors, openCheckpoint } from './checkpoint';
import { normalizeConfig } from './config';
import { fromFloat32 } from './dtype';
import { openFolder } from './node-files';
import { encodeSafetensors, TensorStore, type TensorToWrite } from './safetensors';

/** The fixture's files with model.safetensors rewritten by `edit` (and config.json patched by `configPatch`). */
async function editedFixture(
  fixture: string,
  edit: (tensors: TensorToWrite[]) => TensorToWrite[] = (t) => t,
  configPatch: Record<string, unknown> = {},
): Promise<Map<string, Blob>> {
  const files = await openFolder(fixtureDir(fixture));
  const store = await TensorStore.open(files);
  const tensors = await Promise.all([...store.tensors.values()].map(async (t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], data: await store.readBytes(t.name) })));
  files.set('model.safetensors', new Blob(encodeSafetensors(edit(tensors), { format: 'pt' })));
  const config = JSON.parse(await files.get('config.json')!.text());
  files.set('config.json', new Blob([JSON.stringify({ ...config, ...configPatch })]));
  return files;
}

async function checkpointError(files: ReadonlyMap<string, Blob>): Promise<GradPruneError> {
  const err = await openCheckpoint(files).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(GradPruneError);
  return err as GradPruneError;
}

describe('openCheckpoint on the fixtures and the demo', () => {
  // Stored dtypes from the fixtures README table and the demo README.
  const STORED: Record<string, string> = { 'tiny-llama': 'F32', 'tiny-qwen2': 'BF16', 'tiny-mistral': 'F16', 'tiny-qwen3': 'BF16', 'tiny-random-llama-2': 'F16', demo: 'F16' };
  for (const dir of [...FIXTURE_MODELS.map(fixtureDir), DEMO]) {
    it(`opens ${dir.split('/').pop()} with every tensor it needs and nothing extra`, async () => {
      const ckpt = await openCheckpoint(await openFolder(dir), 'm');
      expect(ckpt.name).toBe('m');
      expect(ckpt.extraTensors).toEqual([]);
      expect(ckpt.dtype).toBe(STORED[dir.split('/').pop()!]);
      expect(ckpt.store.tensors.size).toBe(expectedTensors(ckpt.config).length);
      expect(ckpt.generationConfig === null).toBe(!ckpt.files.has('generation_config.json'));
    });
  }
  it('expects q/k/v biases and no lm_head for tied Qwen2 (tiny-qwen2)', async () => {
    const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-qwen2')));
    const names = expectedTensors(ckpt.config).map((t) => t.name);
    expect(names).not.toContain('lm_head.weight');
    expect(names).toContain('model.layers.4.self_attn.k_proj.bias');
    expect(names).not.toContain('model.layers.4.self_attn.o_proj.bias');
    expect(ckpt.dtype).toBe('BF16');
    expect(ckpt.generationConfig).toMatchObject({ bos_token_id: 1, eos_token_id: 2 });
  });
  it('expects per-head q/k norms [head_dim], no biases and no lm_head for tied Qwen3 (tiny-qwen3)', async () => {
    const ckpt = await openCheckpoint(await openFolder(fixtureDir('tiny-qwen3')));
    expect(ckpt.config.qkNorm).toBe(true);
    expect(ckpt.config.headDim).toBe(24);
    const expected = expectedTensors(ckpt.config);
    const names = expected.map((t) => t.name);
    expect(names).not.toContain('lm_head.weight');
    expect(names.some((n) => n.endsWith('.bias'))).toBe(false);
    for (let l = 0; l < ckpt.config.numLayers; l++) {
      for (const n of ['q_norm', 'k_norm']) expect(expected.find((t) => t.name === `model.layers.${l}.self_attn.${n}.weight`)?.shape).toEqual([24]);
    }
    expect(ckpt.dtype).toBe('BF16');
  });
  it('names the model after config _name_or_path, else its architecture', async () => {
    expect((await openCheckpoint(await editedFixture('tiny-mistral', undefined, { _name_or_path: 'org/My-Model' }))).name).toBe('My-Model');
    expect((await openCheckpoint(await openFolder(fixtureDir('tiny-mistral')))).name).toBe('MistralForCausalLM');
  });
});

describe('openCheckpoint rejects what the engine could not use', () => {
  it('a folder without config.json', async () => {
    const files = await openFolder(fixtureDir('tiny-llama'));
    files.delete('config.json');
    const e = await checkpointError(files);
    expect(e.code).toBe('config');
    expect(e.message).toMatch(/no config\.json/);
    expect(e.subject).toBe('config.json');
  });
  it('an unsupported architecture, listing the supported ones', async () => {
    const e = await checkpointError(await editedFixture('tiny-llama', undefined, { model_type: 'phi3', architectures: ['Phi3ForCausalLM'] }));
    expect(e.message).toMatch(/model type "phi3" is not supported.*LlamaForCausalLM.*MistralForCausalLM.*Qwen2ForCausalLM/);
  });
  it('missing tokenizer files', async () => {
    const files = await openFolder(fixtureDir('tiny-llama'));
    files.delete('tokenizer.json');
    const e = await checkpointError(files);
    expect(e.code).toBe('tokenizer');
    expect(e.message).toMatch(/no tokenizer\.json/);
  });
  it('a tokenizer with more tokens than the model embeds (tokenizer from another model)', async () => {
    const files = await openFolder(fixtureDir('tiny-llama'));
    const other = await openFolder(fixtureDir('tiny-random-llama-2'));
    files.set('tokenizer.json', other.get('tokenizer.json')!);
    files.set('tokenizer_config.json', other.get('tokenizer_config.json')!);
    expect((await checkpointError(files)).message).toMatch(/tokenizer\.json has 32000 tokens but the model embeds only 512/);
  });
  it('a missing weights file', async () => {
    const files = await openFolder(fixtureDir('tiny-llama'));
    files.delete('model.safetensors');
    expect((await checkpointError(files)).message).toMatch(/No weights found/);
  });
  it('a missing layer tensor, named with its expected shape', async () => {
    const e = await checkpointError(await editedFixture('tiny-llama', (ts) => ts.filter((t) => t.name !== 'model.layers.3.mlp.up_proj.weight')));
    expect(e.code).toBe('tensor');
    expect(e.message).toMatch(/lack 1 tensor that LlamaForCausalLM.*model\.layers\.3\.mlp\.up_proj\.weight \[176, 64\]/);
    expect(e.subject).toBe('model.layers.3.mlp.up_proj.weight');
  });
  it('fewer layers in the file than config.json says', async () => {
    const e = await checkpointError(await editedFixture('tiny-llama', undefined, { num_hidden_layers: 7 }));
    expect(e.message).toMatch(/lack 9 tensors.*model\.layers\.6\.input_layernorm\.weight \[64\].*and 4 more/);
  });
  it('a missing Qwen2 q/k/v bias', async () => {
    const e = await checkpointError(await editedFixture('tiny-qwen2', (ts) => ts.filter((t) => t.name !== 'model.layers.2.self_attn.v_proj.bias')));
    expect(e.message).toMatch(/model\.layers\.2\.self_attn\.v_proj\.bias \[32\]/);
  });
  it('an untied config without lm_head.weight, suggesting tie_word_embeddings', async () => {
    const e = await checkpointError(await editedFixture('tiny-qwen2', undefined, { tie_word_embeddings: false }));
    expect(e.message).toMatch(/lm_head\.weight \[512, 96\].*"tie_word_embeddings": true/);
  });
  it('Qwen3 q_norm / k_norm: required, and accepted once present', async () => {
    const toQwen3 = { model_type: 'qwen3', architectures: ['Qwen3ForCausalLM'], head_dim: 16 };
    const missing = await checkpointError(await editedFixture('tiny-qwen2', undefined, toQwen3));
    expect(missing.message).toMatch(/model\.layers\.0\.self_attn\.q_norm\.weight \[16\]/);
    const withNorms = await editedFixture('tiny-qwen2', (ts) => {
      const norm = (name: string): TensorToWrite => ({ name, dtype: 'BF16', shape: [16], data: fromFloat32(new Float32Array(16).fill(1), 'BF16') });
      return [...ts, ...[0, 1, 2, 3, 4].flatMap((l) => [norm(`model.layers.${l}.self_attn.q_norm.weight`), norm(`model.layers.${l}.self_attn.k_norm.weight`)])];
    }, toQwen3);
    const ckpt = await openCheckpoint(withNorms);
    expect(ckpt.config.qkNorm).toBe(true);
    // Qwen3 has no q/k/v biases: the Qwen2 biases in the file are tolerated and listed as unused.
    expect(ckpt.extraTensors).toHaveLength(15);
    expect(ckpt.extraTensors).toContain('model.layers.0.self_attn.q_proj.bias');
  });
  it('a tensor of the wrong shape: expected vs found', async () => {
    const e = await checkpointError(
      await editedFixture('tiny-llama', (ts) =>
        ts.map((t) => (t.name === 'model.layers.1.self_attn.k_proj.weight' ? { ...t, shape: [64, 32] } : t)),
      ),
    );
    expect(e.message).toMatch(/"model\.layers\.1\.self_attn\.k_proj\.weight" in model\.safetensors has shape \[64, 32\], but config\.json implies \[32, 64\]/);
  });
  it('a config whose sizes disagree with the weights', async () => {
    const e = await checkpointError(await editedFixture('tiny-llama', undefined, { intermediate_size: 180 }));
    expect(e.message).toMatch(/model\.layers\.0\.mlp\.gate_proj\.weight" in model\.safetensors has shape \[176, 64\], but config\.json implies \[180, 64\]/);
  });
  it('mixed weight dtypes, naming both tensors', async () => {
    const e = await checkpointError(
      await editedFixture('tiny-llama', (ts) =>
        ts.map((t) => (t.name === 'model.norm.weight' ? { ...t, dtype: 'F16', data: fromFloat32(new Float32Array(t.data.slice().buffer), 'F16') } : t)),
      ),
    );
    expect(e.message).toMatch(/"model\.norm\.weight" in model\.safetensors is F16 but "model\.embed_tokens\.weight" in model\.safetensors is F32; mixed/);
  });
  it('a quantized (integer) weight, naming the tensor and dtype', async () => {
    const e = await checkpointError(
      await editedFixture('tiny-mistral', (ts) =>
        ts.map((t) => (t.name === 'model.layers.2.mlp.down_proj.weight' ? { ...t, dtype: 'I8', data: new Uint8Array(t.data.byteLength / 2) } : t)),
      ),
    );
    expect(e.message).toMatch(/"model\.layers\.2\.mlp\.down_proj\.weight" in model\.safetensors is stored as I8/);
  });
  it('tolerates and lists unexpected extra tensors (rotary inv_freq)', async () => {
    const ckpt = await openCheckpoint(
      await editedFixture('tiny-llama', (ts) => [...ts, { name: 'model.layers.0.self_attn.rotary_emb.inv_freq', dtype: 'F32', shape: [8], data: new Uint8Array(32) }]),
    );
    expect(ckpt.extraTensors).toEqual(['model.layers.0.self_attn.rotary_emb.inv_freq']);
  });
});

describe('expectedTensors', () => {
  it('lists 9 tensors per Llama layer plus embeddings, final norm and lm_head', () => {
    const c = normalizeConfig({ model_type: 'llama', hidden_size: 8, intermediate_size: 12, num_hidden_layers: 3, num_attention_heads: 2, vocab_size: 10 });
    const names = expectedTensors(c).map((t) => t.name);
    expect(names).toHaveLength(1 + 3 * 9 + 1 + 1);
    expect(names[0]).toBe('model.embed_tokens.weight');
    expect(names.at(-1)).toBe('lm_head.weight');
  });
});
