// PEFT adapter folders: adapter_config.json fields, PEFT's tensor names and shapes, a round trip of the fixtures'
// adapter values, and a clear error for each malformed folder.
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { LINEAR_MODULES, normalizeConfig, type ModelConfig } from '../model/config';
import { fromFloat32 } from '../model/dtype';
import { openFolder } from '../model/node-files';
import { SafetensorsFile, encodeSafetensors, type TensorToWrite } from '../model/safetensors';
import { DEFAULT_LORA, loadLoraAdapters, type LoraAdapter } from '../nn/lora';
import { openReference } from '../nn/reference/fixture';
import { fixtureDir } from '../testing/paths';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, readPeftAdapter, writePeftAdapter } from './peft';

async function fixtureConfig(name: string): Promise<ModelConfig> {
  const files = await openFolder(fixtureDir(name));
  return normalizeConfig(JSON.parse(await files.get('config.json')!.text()));
}

async function fixtureAdapters(name: string): Promise<{ config: ModelConfig; adapters: LoraAdapter[]; ref: Awaited<ReturnType<typeof openReference>> }> {
  const config = await fixtureConfig(name);
  const ref = await openReference(fixtureDir(name), 'lora_grad.safetensors');
  const adapters = await loadLoraAdapters(config, DEFAULT_LORA, (n) => ref.readF32(n));
  return { config, adapters, ref };
}

describe.each(['tiny-llama', 'tiny-qwen2', 'tiny-mistral', 'tiny-qwen3'])('PEFT adapter round trip on %s', (name) => {
  it("writes PEFT's config and tensor names/shapes, and reads the fixture values back exactly", async () => {
    const { config, adapters, ref } = await fixtureAdapters(name);
    const files = writePeftAdapter({ baseModel: `fixtures/${name}`, lora: DEFAULT_LORA, adapters, model: config });
    expect([...files.keys()].sort()).toEqual([ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]);

    const cfg = JSON.parse(await files.get(ADAPTER_CONFIG_FILE)!.text());
    expect(cfg).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: 8,
      lora_alpha: 32,
      lora_dropout: 0,
      bias: 'none',
      fan_in_fan_out: false,
      inference_mode: true,
      use_dora: false,
      use_rslora: false,
      base_model_name_or_path: `fixtures/${name}`,
    });
    expect([...cfg.target_modules].sort()).toEqual([...LINEAR_MODULES].sort());

    const st = await SafetensorsFile.open(files.get(ADAPTER_WEIGHTS_FILE)!, ADAPTER_WEIGHTS_FILE);
    expect(st.tensors.size).toBe(config.numLayers * 7 * 2);
    expect(st.metadata).toEqual({ format: 'pt' });
    // PeftModelForCausalLM's names: base_model.model. + the base model's module path + .lora_A/B.weight.
    const C = config.hiddenSize;
    const q = st.info('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    expect(q).toMatchObject({ dtype: 'F32', shape: [8, C] });
    expect(st.info('base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight').shape).toEqual([config.numKvHeads * config.headDim, 8]);
    expect(st.info(`base_model.model.model.layers.${config.numLayers - 1}.mlp.down_proj.lora_A.weight`).shape).toEqual([8, config.intermediateSize]);
    expect(st.info(`base_model.model.model.layers.${config.numLayers - 1}.mlp.down_proj.lora_B.weight`).shape).toEqual([C, 8]);

    const back = await readPeftAdapter(files, config);
    expect(back.lora).toEqual({ rank: 8, alpha: 32, modules: [...LINEAR_MODULES] });
    expect(back.baseModel).toBe(`fixtures/${name}`);
    expect(back.adapters.length).toBe(config.numLayers * 7);
    for (const a of back.adapters) {
      // Against the fixture file itself (model.layers.L.<module>.lora_A.weight), not the values we wrote.
      expect(a.A, `${a.name} A`).toEqual(await ref.readF32(`${a.name}.lora_A.weight`));
      expect(a.B, `${a.name} B`).toEqual(await ref.readF32(`${a.name}.lora_B.weight`));
    }
  });
});

describe('reading a malformed PEFT adapter', () => {
  const setup = async () => {
    const { config, adapters } = await fixtureAdapters('tiny-llama');
    const files = writePeftAdapter({ baseModel: 'tiny-llama', lora: DEFAULT_LORA, adapters, model: config });
    return { config, adapters, files };
  };
  const withConfig = async (files: Map<string, Blob>, change: (cfg: Record<string, unknown>) => void) => {
    const cfg = JSON.parse(await files.get(ADAPTER_CONFIG_FILE)!.text());
    change(cfg);
    return new Map([...files, [ADAPTER_CONFIG_FILE, new Blob([JSON.stringify(cfg)])]]);
  };
  const failure = async (files: ReadonlyMap<string, Blob>, config: ModelConfig): Promise<GradPruneError> => {
    const err = await readPeftAdapter(files, config).then(() => null, (e) => e);
    expect(err).toBeInstanceOf(GradPruneError);
    return err as GradPruneError;
  };
  /** The weights file with tensor `name` replaced by (or added as) `tensor`, or removed when `tensor` is null. */
  const withTensor = async (files: Map<string, Blob>, name: string, tensor: TensorToWrite | null) => {
    const st = await SafetensorsFile.open(files.get(ADAPTER_WEIGHTS_FILE)!, ADAPTER_WEIGHTS_FILE);
    const tensors: TensorToWrite[] = [];
    for (const t of st.tensors.values()) {
      if (t.name !== name) tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: await st.readBytes(t.name) });
    }
    if (tensor) tensors.push(tensor);
    return new Map([...files, [ADAPTER_WEIGHTS_FILE, new Blob(encodeSafetensors(tensors))]]);
  };

  it('a missing adapter_config.json', async () => {
    const { config, files } = await setup();
    files.delete(ADAPTER_CONFIG_FILE);
    const err = await failure(files, config);
    expect(err.message).toMatch(/no adapter_config\.json/);
    expect(err.subject).toBe(ADAPTER_CONFIG_FILE);
  });

  it('a missing adapter_model.safetensors, with the .bin hint', async () => {
    const { config, files } = await setup();
    files.delete(ADAPTER_WEIGHTS_FILE);
    files.set('adapter_model.bin', new Blob(['x']));
    const err = await failure(files, config);
    expect(err.message).toMatch(/no adapter_model\.safetensors.*adapter_model\.bin.*safe_serialization=True/);
  });

  it('a tensor with the wrong shape', async () => {
    const { config, files } = await setup();
    const name = 'base_model.model.model.layers.2.mlp.up_proj.lora_B.weight';
    const bad = await withTensor(files, name, { name, dtype: 'F32', shape: [config.intermediateSize, 4], data: fromFloat32(new Float32Array(config.intermediateSize * 4), 'F32') });
    const err = await failure(bad, config);
    expect(err.message).toBe(`${ADAPTER_WEIGHTS_FILE}: tensor "${name}" has shape [${config.intermediateSize}, 4], but rank 8 on this model needs [${config.intermediateSize}, 8]. The adapter does not belong to this model (or adapter_config.json's "r" is wrong).`);
    expect(err.subject).toBe(name);
  });

  it('a missing tensor', async () => {
    const { config, files } = await setup();
    const name = 'base_model.model.model.layers.4.self_attn.o_proj.lora_A.weight';
    const err = await failure(await withTensor(files, name, null), config);
    expect(err.message).toMatch(new RegExp(`has no "${name.replaceAll('.', '\\.')}"`));
  });

  it('an adapter for a model with more layers (e.g. the unpruned one)', async () => {
    const { config, files } = await setup();
    const pruned = normalizeConfig({ ...config.raw, num_hidden_layers: 4 });
    const err = await failure(files, pruned);
    expect(err.message).toMatch(/is for layer [45], but the model has 4 layers \(0\.\.3\)/);
  });

  it('a tensor that is not a LoRA tensor of a linear layer', async () => {
    const { config, files } = await setup();
    const name = 'base_model.model.model.embed_tokens.lora_embedding_A';
    const bad = await withTensor(files, name, { name, dtype: 'F32', shape: [8, 4], data: new Uint8Array(8 * 4 * 4) });
    expect((await failure(bad, config)).message).toMatch(/is not a LoRA tensor of a Llama-family layer/);
  });

  it.each([
    ['peft_type', (c: Record<string, unknown>) => (c.peft_type = 'IA3'), /peft_type is "IA3", not "LORA"/],
    ['r', (c: Record<string, unknown>) => (c.r = 0), /"r" must be a positive integer \(found 0\)/],
    ['use_dora', (c: Record<string, unknown>) => (c.use_dora = true), /DoRA/],
    ['use_rslora', (c: Record<string, unknown>) => (c.use_rslora = true), /rank-stabilised/],
    ['modules_to_save', (c: Record<string, unknown>) => (c.modules_to_save = ['lm_head']), /modules_to_save/],
    ['target_modules', (c: Record<string, unknown>) => (c.target_modules = ['q_proj', 'lm_head']), /target_modules names "lm_head"/],
    ['task_type', (c: Record<string, unknown>) => (c.task_type = 'SEQ_CLS'), /task_type is "SEQ_CLS"/],
  ])('an unsupported adapter_config.json: %s', async (_key, change, message) => {
    const { config, files } = await setup();
    const err = await failure(await withConfig(files, change), config);
    expect(err.code).toBe('config');
    expect(err.message).toMatch(message);
  });

  it('a target_modules list narrower than the tensors', async () => {
    const { config, files } = await setup();
    const err = await failure(await withConfig(files, (c) => (c.target_modules = ['q_proj', 'v_proj'])), config);
    expect(err.message).toMatch(/adapts k_proj, which adapter_config\.json's target_modules does not list/);
  });

  it('reads "all-linear" and a PEFT regex as target_modules', async () => {
    const { config, files } = await setup();
    expect((await readPeftAdapter(await withConfig(files, (c) => (c.target_modules = 'all-linear')), config)).lora.modules).toEqual([...LINEAR_MODULES]);
    const re = await withConfig(files, (c) => (c.target_modules = '.*\\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)'));
    expect((await readPeftAdapter(re, config)).adapters.length).toBe(config.numLayers * 7);
  });

  it('adapter_config.json that is not JSON', async () => {
    const { config, files } = await setup();
    files.set(ADAPTER_CONFIG_FILE, new Blob(['{ r: 8']));
    expect((await failure(files, config)).message).toMatch(/adapter_config\.json is not valid JSON/);
  });

  it('refuses to write adapters of the wrong size', async () => {
    const { config, adapters } = await setup();
    const broken = adapters.map((a, i) => (i === 3 ? { ...a, A: new Float32Array(5) } : a));
    expect(() => writePeftAdapter({ baseModel: 'x', lora: DEFAULT_LORA, adapters: broken, model: config })).toThrow(/LoRA A of model\.layers\.0\.self_attn\.o_proj has 5 values; rank 8 needs 512/);
  });
});
