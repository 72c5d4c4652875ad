// LoRA adapters in PEFT's folder layout, written and read back:
//   adapter_config.json        { peft_type: "LORA", r, lora_alpha, target_modules, base_model_name_or_path, … }
//   adapter_model.safetensors  base_model.model.model.layers.{L}.self_attn.q_proj.lora_A.weight  [r, in]
//                              base_model.model.model.layers.{L}.self_attn.q_proj.lora_B.weight  [out, r]
// `PeftModel.from_pretrained(base, folder)` loads what this writes; reading accepts what PEFT saves for a plain
// LoRA on the linear modules of a Llama / Mistral / Qwen2 model and refuses the rest with a reason.

import { GradPruneError } from '../errors';
import { LINEAR_MODULES, linearShape, type LinearModule, type ModelConfig } from '../model/config';
import { fromFloat32 } from '../model/dtype';
import { isJsonObject, parseJsonFile } from '../model/json';
import { SafetensorsFile, TensorStore, encodeSafetensors } from '../model/safetensors';
import { adapterName, validateLoraConfig, type LoraAdapter, type LoraConfig } from '../nn/lora';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** PeftModelForCausalLM wraps the base model twice: `base_model` (the LoraModel) → `.model` (the CausalLM). */
export const PEFT_PREFIX = 'base_model.model.';

export const peftTensorName = (layer: number, module: LinearModule, which: 'lora_A' | 'lora_B'): string =>
  `${PEFT_PREFIX}${adapterName(layer, module)}.${which}.weight`;

export interface PeftAdapterInput {
  /** The base model's name or path, as `base_model_name_or_path`. */
  baseModel: string;
  lora: LoraConfig;
  /** One adapter per (layer, targeted module) of `model`, with host values. */
  adapters: readonly Pick<LoraAdapter, 'layer' | 'module' | 'A' | 'B'>[];
  model: ModelConfig;
}

/** adapter_config.json as PEFT 0.21 writes it for a LoRA with these settings. */
export function peftAdapterConfig(baseModel: string, lora: LoraConfig): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: lora.alpha,
    lora_bias: false,
    lora_dropout: 0.0,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: lora.rank,
    rank_pattern: {},
    revision: null,
    target_modules: LINEAR_MODULES.filter((m) => lora.modules.includes(m)),
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: false,
  };
}

/** The two files of a PEFT adapter folder (f32 tensors, as PEFT saves an f32 adapter). */
export function writePeftAdapter(input: PeftAdapterInput): Map<string, Blob> {
  const { lora, model } = input;
  validateLoraConfig(lora);
  const byKey = new Map(input.adapters.map((a) => [`${a.layer}.${a.module}`, a]));
  const tensors = [];
  for (let layer = 0; layer < model.numLayers; layer++) {
    for (const module of LINEAR_MODULES) {
      if (!lora.modules.includes(module)) continue;
      const a = byKey.get(`${layer}.${module}`);
      if (!a) throw new GradPruneError('input', `No values for the LoRA adapter of layer ${layer} ${module}.`, { subject: adapterName(layer, module) });
      const [out, inp] = linearShape(model, module);
      const check = (t: Float32Array, which: string, n: number) => {
        if (t.length !== n) {
          throw new GradPruneError('tensor', `LoRA ${which} of ${adapterName(layer, module)} has ${t.length} values; rank ${lora.rank} needs ${n}.`, {
            subject: adapterName(layer, module),
          });
        }
      };
      check(a.A, 'A', lora.rank * inp);
      check(a.B, 'B', out * lora.rank);
      tensors.push({ name: peftTensorName(layer, module, 'lora_A'), dtype: 'F32' as const, shape: [lora.rank, inp], data: fromFloat32(a.A, 'F32') });
      tensors.push({ name: peftTensorName(layer, module, 'lora_B'), dtype: 'F32' as const, shape: [out, lora.rank], data: fromFloat32(a.B, 'F32') });
    }
  }
  return new Map([
    [ADAPTER_CONFIG_FILE, new Blob([JSON.stringify(peftAdapterConfig(input.baseModel, lora), null, 2) + '\n'])],
    [ADAPTER_WEIGHTS_FILE, new Blob(encodeSafetensors(tensors, { format: 'pt' }))],
  ]);
}

export interface PeftAdapter {
  lora: LoraConfig;
  adapters: LoraAdapter[];
  baseModel: string | null;
  /** adapter_config.json as read. */
  raw: Record<string, unknown>;
}

const TENSOR_NAME = /^(?:base_model\.model\.)?model\.layers\.(\d+)\.(?:self_attn|mlp)\.([a-z_]+)\.(lora_A|lora_B)(?:\.default)?\.weight$/;

/**
 * Read a PEFT LoRA adapter folder (file name → Blob) for `model`: the config's settings, every tensor's name and
 * shape checked against the model. Throws a GradPruneError naming the file or tensor and what to do.
 */
export async function readPeftAdapter(files: ReadonlyMap<string, Blob>, model: ModelConfig): Promise<PeftAdapter> {
  const cfg = await readAdapterConfig(files);
  const lora = loraConfigOf(cfg);
  const weights = files.get(ADAPTER_WEIGHTS_FILE);
  if (!weights) {
    throw new GradPruneError('file', `The adapter folder has no ${ADAPTER_WEIGHTS_FILE}.`, {
      subject: ADAPTER_WEIGHTS_FILE,
      hint: files.has('adapter_model.bin')
        ? 'It has adapter_model.bin (a PyTorch pickle): save the adapter with safe_serialization=True (the default since PEFT 0.6).'
        : 'Give the folder PEFT saved (save_pretrained writes adapter_config.json and adapter_model.safetensors).',
    });
  }
  const store = TensorStore.fromFiles([await SafetensorsFile.open(weights, ADAPTER_WEIGHTS_FILE)]);
  const found = new Map<string, string>(); // `${layer}.${module}.${which}` → tensor name
  for (const name of store.tensors.keys()) {
    const m = TENSOR_NAME.exec(name);
    const where = `${ADAPTER_WEIGHTS_FILE}: tensor "${name}"`;
    if (!m) {
      throw new GradPruneError('tensor', `${where} is not a LoRA tensor of a Llama-family layer (expected names like "${peftTensorName(0, 'q_proj', 'lora_A')}").`, {
        subject: name,
        hint: 'Only plain LoRA adapters on the linear layers are supported (no modules_to_save, DoRA or embedding adapters).',
      });
    }
    const layer = Number(m[1]);
    const module = m[2] as LinearModule;
    if (!(LINEAR_MODULES as readonly string[]).includes(module)) {
      throw new GradPruneError('tensor', `${where} adapts "${module}", which is not one of ${LINEAR_MODULES.join(', ')}.`, { subject: name });
    }
    if (layer >= model.numLayers) {
      throw new GradPruneError('tensor', `${where} is for layer ${layer}, but the model has ${model.numLayers} layers (0..${model.numLayers - 1}).`, {
        subject: name,
        hint: 'The adapter was trained on a different (e.g. unpruned) model: use an adapter saved for this one.',
      });
    }
    if (!lora.modules.includes(module)) {
      throw new GradPruneError('tensor', `${where} adapts ${module}, which adapter_config.json's target_modules does not list.`, { subject: name });
    }
    found.set(`${layer}.${module}.${m[3]}`, name);
  }
  const adapters: LoraAdapter[] = [];
  for (let layer = 0; layer < model.numLayers; layer++) {
    for (const module of LINEAR_MODULES) {
      if (!lora.modules.includes(module)) continue;
      const [out, inp] = linearShape(model, module);
      const read = async (which: 'lora_A' | 'lora_B', shape: [number, number]): Promise<Float32Array> => {
        const name = found.get(`${layer}.${module}.${which}`);
        const expected = peftTensorName(layer, module, which);
        if (!name) {
          throw new GradPruneError('tensor', `${ADAPTER_WEIGHTS_FILE} has no "${expected}".`, {
            subject: expected,
            hint: 'Every layer must carry the adapters target_modules names (layers_to_transform is not supported); the file may be truncated or from another model.',
          });
        }
        const info = store.info(name);
        if (info.shape.length !== 2 || info.shape[0] !== shape[0] || info.shape[1] !== shape[1]) {
          throw new GradPruneError('tensor', `${ADAPTER_WEIGHTS_FILE}: tensor "${name}" has shape [${info.shape.join(', ')}], but rank ${lora.rank} on this model needs [${shape.join(', ')}].`, {
            subject: name,
            hint: 'The adapter does not belong to this model (or adapter_config.json\'s "r" is wrong).',
          });
        }
        return store.readF32(name);
      };
      const A = await read('lora_A', [lora.rank, inp]);
      const B = await read('lora_B', [out, lora.rank]);
      adapters.push({ layer, module, name: adapterName(layer, module), inFeatures: inp, outFeatures: out, A, B });
    }
  }
  const baseModel = typeof cfg.base_model_name_or_path === 'string' ? cfg.base_model_name_or_path : null;
  return { lora, adapters, baseModel, raw: cfg };
}

async function readAdapterConfig(files: ReadonlyMap<string, Blob>): Promise<Record<string, unknown>> {
  const blob = files.get(ADAPTER_CONFIG_FILE);
  if (!blob) {
    throw new GradPruneError('file', `The adapter folder has no ${ADAPTER_CONFIG_FILE}.`, {
      subject: ADAPTER_CONFIG_FILE,
      hint: 'Give the folder a PEFT adapter was saved to (adapter_config.json and adapter_model.safetensors).',
    });
  }
  const json = parseJsonFile(await blob.text(), ADAPTER_CONFIG_FILE, 'file');
  if (!isJsonObject(json)) {
    throw new GradPruneError('file', `${ADAPTER_CONFIG_FILE} is not a JSON object.`, { subject: ADAPTER_CONFIG_FILE });
  }
  return json;
}

function loraConfigOf(cfg: Record<string, unknown>): LoraConfig {
  const bad = (what: string, hint?: string) => new GradPruneError('config', `${ADAPTER_CONFIG_FILE}: ${what}.`, { subject: ADAPTER_CONFIG_FILE, hint });
  if (cfg.peft_type !== 'LORA') throw bad(`peft_type is ${JSON.stringify(cfg.peft_type ?? null)}, not "LORA"`, 'Only LoRA adapters are supported.');
  const rank = cfg.r;
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank <= 0) throw bad(`"r" must be a positive integer (found ${JSON.stringify(rank ?? null)})`);
  const alpha = cfg.lora_alpha ?? 8; // PEFT's default
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) throw bad(`"lora_alpha" must be a positive number (found ${JSON.stringify(alpha)})`);
  const unsupported: Array<[string, boolean, string]> = [
    ['use_dora', cfg.use_dora === true, 'DoRA adapters'],
    ['use_rslora', cfg.use_rslora === true, 'rank-stabilised LoRA (a different scale)'],
    ['fan_in_fan_out', cfg.fan_in_fan_out === true, 'fan_in_fan_out (Conv1D-style weights)'],
    ['bias', cfg.bias !== undefined && cfg.bias !== 'none', `bias "${String(cfg.bias)}" (trained biases)`],
    ['rank_pattern', isNonEmpty(cfg.rank_pattern), 'per-module ranks (rank_pattern)'],
    ['alpha_pattern', isNonEmpty(cfg.alpha_pattern), 'per-module alphas (alpha_pattern)'],
    ['modules_to_save', isNonEmpty(cfg.modules_to_save), 'fully trained extra modules (modules_to_save)'],
    ['layers_to_transform', isNonEmpty(cfg.layers_to_transform), 'adapters on some layers only (layers_to_transform)'],
  ];
  for (const [key, on, what] of unsupported) if (on) throw bad(`"${key}" asks for ${what}, which the studio does not support`, 'Use a plain LoRA adapter.');
  if (cfg.task_type !== undefined && cfg.task_type !== null && cfg.task_type !== 'CAUSAL_LM') {
    throw bad(`task_type is "${String(cfg.task_type)}", not "CAUSAL_LM"`, 'The adapter must be for a causal language model.');
  }
  const modules = targetModules(cfg.target_modules, bad);
  const lora: LoraConfig = { rank, alpha, modules };
  validateLoraConfig(lora);
  return lora;
}

function targetModules(v: unknown, bad: (what: string, hint?: string) => GradPruneError): LinearModule[] {
  if (v === 'all-linear') return [...LINEAR_MODULES];
  if (typeof v === 'string') {
    // PEFT treats a string as a regex over full module names.
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${v})$`);
    } catch {
      throw bad(`target_modules ${JSON.stringify(v)} is not a valid pattern`);
    }
    const modules = LINEAR_MODULES.filter((m) => re.test(adapterName(0, m)));
    if (!modules.length) throw bad(`target_modules ${JSON.stringify(v)} matches none of ${LINEAR_MODULES.join(', ')}`);
    return modules;
  }
  if (!Array.isArray(v) || v.length === 0) throw bad(`target_modules must be a list of module names (found ${JSON.stringify(v ?? null)})`);
  const names = v.map((m) => (typeof m === 'string' ? m.split('.').pop()! : ''));
  const unknown = names.find((m) => !(LINEAR_MODULES as readonly string[]).includes(m));
  if (unknown !== undefined) {
    throw bad(`target_modules names "${unknown}", which is not one of ${LINEAR_MODULES.join(', ')}`, 'Only adapters on the attention and MLP projections are supported.');
  }
  return LINEAR_MODULES.filter((m) => names.includes(m));
}

const isNonEmpty = (v: unknown): boolean =>
  v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0) && !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0);
