// A Hugging Face checkpoint opened from its files (a dropped folder, flattened by file name) and checked against
// what its architecture needs: every tensor present with the right shape, one floating dtype, a tokenizer.
// Only headers and small JSON files are read here; weights stay in their Blobs until the engine streams them.

import { GradPruneError } from '../errors';
import { normalizeConfig, LINEAR_MODULES, linearShape, linearWeightName, type ModelConfig } from './config';
import { isWeightDType, type WeightDType } from './dtype';
import { describeJsonType, isJsonObject, readJsonBlob } from './json';
import { TensorStore, type TensorInfo } from './safetensors';
import { loadTokenizer, type TextTokenizer } from './tokenizer';

export interface Checkpoint {
  name: string;
  config: ModelConfig;
  store: TensorStore;
  tokenizer: TextTokenizer;
  /** The stored dtype of the weights (one dtype for every tensor the architecture needs). */
  dtype: WeightDType;
  files: ReadonlyMap<string, Blob>;
  generationConfig: Record<string, unknown> | null;
  /** Tensors in the files that the architecture does not use (e.g. rotary `inv_freq`), tolerated and ignored. */
  extraTensors: string[];
}

export interface ExpectedTensor {
  name: string;
  shape: number[];
}

export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'] as const;

/** config.json and generation_config.json are a few KB; anything near this is not one. */
const MAX_CONFIG_BYTES = 16 * 2 ** 20;

/** Names and shapes of every tensor the decoder needs, in checkpoint order: embeddings, layers, final norm, head (for the first `layers` layers). */
export function expectedTensors(config: ModelConfig, layers = config.numLayers): ExpectedTensor[] {
  const { hiddenSize: C, vocabSize: V, headDim: HD } = config;
  const out: ExpectedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [V, C] }];
  for (let l = 0; l < layers; l++) out.push(...expectedLayerTensors(config, l));
  out.push({ name: 'model.norm.weight', shape: [C] });
  if (!config.tiedEmbeddings) out.push({ name: 'lm_head.weight', shape: [V, C] });
  return out.map((t) => ({ ...t, shape: [...t.shape] }));

  function expectedLayerTensors(c: ModelConfig, l: number): ExpectedTensor[] {
    const layer: ExpectedTensor[] = [
      { name: `model.layers.${l}.input_layernorm.weight`, shape: [C] },
      { name: `model.layers.${l}.post_attention_layernorm.weight`, shape: [C] },
    ];
    for (const m of LINEAR_MODULES) {
      const weight = linearWeightName(l, m);
      const shape = linearShape(c, m);
      layer.push({ name: weight, shape });
      if (c.bias[m]) layer.push({ name: weight.replace(/\.weight$/, '.bias'), shape: [shape[0]] });
    }
    if (c.qkNorm) {
      layer.push({ name: `model.layers.${l}.self_attn.q_norm.weight`, shape: [HD] });
      layer.push({ name: `model.layers.${l}.self_attn.k_norm.weight`, shape: [HD] });
    }
    return layer;
  }
}

/**
 * Open and validate a checkpoint. `files` maps each file name (no folder) to its contents.
 * Throws a GradPruneError naming the file or tensor for anything the engine could not use.
 */
export async function openCheckpoint(files: ReadonlyMap<string, Blob>, name?: string): Promise<Checkpoint> {
  const config = normalizeConfig(await readJsonFile(files, 'config.json', 'config'), 'config.json');
  const missingTokenizerFiles = TOKENIZER_FILES.filter((f) => !files.has(f));
  if (missingTokenizerFiles.length) {
    throw new GradPruneError('tokenizer', `The model folder has no ${missingTokenizerFiles.join(' or ')}.`, {
      subject: missingTokenizerFiles[0],
      hint: 'Drop the whole model folder: the studio needs tokenizer.json and tokenizer_config.json (older checkpoints with only tokenizer.model must be re-saved with a fast tokenizer).',
    });
  }
  const store = await TensorStore.open(files);
  const { dtype, extraTensors } = checkTensors(config, store);
  const tokenizer = await loadTokenizer(files);
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new GradPruneError('tokenizer', `tokenizer.json has ${tokenizer.vocabSize} tokens but the model embeds only ${config.vocabSize} (config.json "vocab_size").`, {
      subject: 'tokenizer.json',
      hint: 'The tokenizer does not belong to these weights: use the tokenizer files from the same checkpoint.',
    });
  }
  const generationConfig = files.has('generation_config.json') ? await readJsonFile(files, 'generation_config.json', 'file') : null;
  return {
    name: name ?? nameFromConfig(config),
    config,
    store,
    tokenizer,
    dtype,
    files,
    generationConfig,
    extraTensors,
  };
}

/** Check presence, shape and dtype of every tensor the architecture needs; return the common dtype and the extras. */
export function checkTensors(config: ModelConfig, store: TensorStore): { dtype: WeightDType; extraTensors: string[] } {
  // Nothing is built for layers the weights do not have: a config.json saying 10^8 layers is answered at once.
  // Layers beyond the first missing one are only counted (each lacks all of its tensors).
  const present = layersPresent(store);
  const listedLayers = Math.min(config.numLayers, present + 1);
  const expected = expectedTensors(config, listedLayers);
  const where = (t: TensorInfo) => `"${t.name}" in ${t.file}`;

  const missing = expected.filter((e) => !store.has(e.name));
  const unlisted = (config.numLayers - listedLayers) * (listedLayers > 0 ? expectedTensors(config, 1).length - expectedTensors(config, 0).length : 0);
  if (missing.length) {
    const count = missing.length + unlisted;
    const shown = missing.slice(0, 5).map((e) => `${e.name} [${e.shape.join(', ')}]`).join(', ');
    const more = count > 5 ? ` and ${count - 5} more` : '';
    const lmHeadOnly = missing.length === 1 && missing[0].name === 'lm_head.weight';
    const layerCount = config.numLayers > present ? ` (config.json says "num_hidden_layers": ${config.numLayers}; the weights hold ${present} layer${present === 1 ? '' : 's'})` : '';
    throw new GradPruneError('tensor', `The weights lack ${count} tensor${count > 1 ? 's' : ''} that ${config.architecture} with this config.json needs${layerCount}: ${shown}${more}.`, {
      subject: missing[0].name,
      hint: lmHeadOnly
        ? 'If the model shares its input embeddings with the output layer, config.json should say "tie_word_embeddings": true.'
        : 'The weights and config.json do not match (layer count, biases, or a partial download): use the files of one checkpoint.',
    });
  }
  for (const e of expected) {
    const t = store.info(e.name);
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      throw new GradPruneError('tensor', `Tensor ${where(t)} has shape [${t.shape.join(', ')}], but config.json implies [${e.shape.join(', ')}].`, {
        subject: e.name,
        hint: 'The weights and config.json do not belong together (check hidden_size, heads, head_dim, intermediate_size, vocab_size).',
      });
    }
  }
  const first = store.info(expected[0].name);
  for (const e of expected) {
    const t = store.info(e.name);
    if (!isWeightDType(t.dtype)) {
      throw new GradPruneError('tensor', `Tensor ${where(t)} is stored as ${t.dtype}; the studio reads F32, F16 or BF16 weights.`, {
        subject: t.name,
        hint: 'Quantized checkpoints (GPTQ, AWQ, FP8, bitsandbytes) are not supported: use the unquantized model.',
      });
    }
    if (t.dtype !== first.dtype) {
      throw new GradPruneError('tensor', `Tensor ${where(t)} is ${t.dtype} but ${where(first)} is ${first.dtype}; mixed weight dtypes are not supported.`, {
        subject: t.name,
        hint: 'Save the checkpoint in one dtype (e.g. model.to(torch.bfloat16).save_pretrained(...)).',
      });
    }
  }
  const needed = new Set(expected.map((e) => e.name));
  const extraTensors = [...store.tensors.keys()].filter((n) => !needed.has(n)).sort();
  return { dtype: first.dtype as WeightDType, extraTensors };
}

/** How many distinct decoder layers (model.layers.N.*) the weights hold. */
function layersPresent(store: TensorStore): number {
  const layers = new Set<string>();
  for (const name of store.tensors.keys()) {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    if (m) layers.add(m[1]);
  }
  return layers.size;
}

async function readJsonFile(files: ReadonlyMap<string, Blob>, fileName: string, code: 'config' | 'file'): Promise<Record<string, unknown>> {
  const blob = files.get(fileName);
  if (!blob) {
    throw new GradPruneError(code, `The model folder has no ${fileName}.`, {
      subject: fileName,
      hint: 'Drop the whole Hugging Face model folder (config.json, model.safetensors or its shards with model.safetensors.index.json, tokenizer.json, tokenizer_config.json).',
    });
  }
  const json = await readJsonBlob(blob, fileName, code, { maxBytes: MAX_CONFIG_BYTES });
  if (!isJsonObject(json)) throw new GradPruneError(code, `${fileName} is not a JSON object (it holds ${describeJsonType(json)}).`, { subject: fileName });
  return json;
}

function nameFromConfig(config: ModelConfig): string {
  const path = config.raw._name_or_path;
  if (typeof path === 'string' && path.trim()) return path.split(/[\\/]/).filter(Boolean).pop() ?? path;
  return config.architecture;
}
