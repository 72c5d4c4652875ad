// A checkpoint as one GGUF file for llama.cpp (and Ollama, LM Studio, node-llama-cpp): planGguf checks what GGUF
// can express and builds the header (model and tokenizer metadata, tensor infos) without reading a weight;
// ggufChunks then streams the file — the header, then each tensor converted slice by slice — so a model larger
// than memory is written as it is read. DOM-free and Node-free (the CLI and the worker share it).
//
// The metadata is what llama.cpp's convert_hf_to_gguf.py writes for these models: `llama` for Llama and Mistral,
// `qwen2`, `qwen3`; head counts (GQA), key/value lengths where head_dim ≠ hidden / heads, RoPE base and scaling
// (linear as rope.scaling.*, Llama-3's as the rope_freqs tensor), RMS epsilon, file type.

import { GradPruneError } from '../../errors';
import type { ModelConfig } from '../../model/config';
import { isJsonObject, readJsonBlob } from '../../model/json';
import type { TensorStore } from '../../model/safetensors';
import type { TextTokenizer } from '../../model/tokenizer';
import { alignUp, ggufHeader, rowBytes, tensorDataBytes, type GgufLayout, type Metadata } from './format';
import { encodeAs } from './quantize';
import { ggufTensors, usesLlamaArch, type GgufDType, type GgufTensor } from './tensors';
import { tokenizerMetadata } from './tokenizer';

export type { GgufDType } from './tensors';
export const GGUF_DTYPES: readonly GgufDType[] = ['f16', 'q8_0'];

/** llama_ftype: MOSTLY_F16, MOSTLY_Q8_0. */
const FILE_TYPE: Record<GgufDType, number> = { f16: 1, q8_0: 7 };

/** What a GGUF is made from: an opened checkpoint (model/checkpoint.ts's Checkpoint fits). */
export interface GgufSource {
  name: string;
  config: ModelConfig;
  store: TensorStore;
  tokenizer: TextTokenizer;
  files: ReadonlyMap<string, Blob>;
}

export interface GgufPlan {
  dtype: GgufDType;
  metadata: Metadata;
  tensors: GgufTensor[];
  layout: GgufLayout;
  /** What the person should know (e.g. attention that llama.cpp computes differently), for the CLI to print. */
  notes: string[];
}

const architectureOf = (config: ModelConfig): string => (usesLlamaArch(config) ? 'llama' : config.modelType);

/** Refuse, before any work, what llama.cpp's architecture for this model cannot run. */
function checkExpressible(config: ModelConfig): void {
  if (config.modelType === 'qwen3' && (config.bias.q_proj || config.bias.o_proj)) {
    throw new GradPruneError('config', 'config.json: "attention_bias": true on a Qwen3 model, which llama.cpp\'s qwen3 architecture has no tensors for.', {
      subject: 'config.json',
      hint: 'GGUF export takes Qwen3 models without attention biases, as Qwen publishes them.',
    });
  }
  if (config.modelType === 'qwen2' && config.numHeads * config.headDim !== config.hiddenSize) {
    // llama.cpp's qwen2 architecture sizes q_proj and o_proj hidden × hidden (a width-pruned Qwen2 has fewer heads).
    throw new GradPruneError('config', `config.json: a Qwen2 model whose attention is ${config.numHeads} heads × head_dim ${config.headDim} = ${config.numHeads * config.headDim}, not hidden_size ${config.hiddenSize}, which llama.cpp's qwen2 architecture cannot load.`, {
      subject: 'config.json',
      hint: 'transformers loads the safetensors folder as it is; for GGUF, width-prune a Qwen2 model with --heads 0 (MLP channels only).',
    });
  }
  if (config.modelType === 'qwen2' && (config.bias.o_proj || config.bias.gate_proj)) throw new Error('qwen2 with o/MLP biases cannot come out of normalizeConfig');
}

function modelMetadata(source: GgufSource, dtype: GgufDType): Metadata {
  const c = source.config;
  const arch = architectureOf(c);
  const md: Metadata = new Map();
  const u32 = (key: string, value: number) => md.set(`${arch}.${key}`, { type: 'u32', value });
  const f32 = (key: string, value: number) => md.set(`${arch}.${key}`, { type: 'f32', value });
  md.set('general.architecture', { type: 'string', value: arch });
  md.set('general.type', { type: 'string', value: 'model' });
  md.set('general.name', { type: 'string', value: source.name });
  md.set('general.file_type', { type: 'u32', value: FILE_TYPE[dtype] });
  md.set('general.quantization_version', { type: 'u32', value: 2 });
  u32('vocab_size', c.vocabSize);
  u32('context_length', c.maxPositionEmbeddings);
  u32('embedding_length', c.hiddenSize);
  u32('feed_forward_length', c.intermediateSize);
  u32('block_count', c.numLayers);
  u32('attention.head_count', c.numHeads);
  u32('attention.head_count_kv', c.numKvHeads);
  if (c.headDim * c.numHeads !== c.hiddenSize) {
    u32('attention.key_length', c.headDim);
    u32('attention.value_length', c.headDim);
  }
  u32('rope.dimension_count', c.headDim);
  f32('rope.freq_base', c.rope.theta);
  if (c.rope.type === 'linear') {
    md.set(`${arch}.rope.scaling.type`, { type: 'string', value: 'linear' });
    f32('rope.scaling.factor', c.rope.factor);
  }
  f32('attention.layer_norm_rms_epsilon', c.rmsNormEps);
  return md;
}

async function readTokenizerJson(files: ReadonlyMap<string, Blob>, name: string): Promise<Record<string, unknown>> {
  const blob = files.get(name);
  if (!blob) throw new GradPruneError('tokenizer', `The model folder has no ${name}.`, { subject: name, hint: 'GGUF export needs tokenizer.json and tokenizer_config.json.' });
  const json = await readJsonBlob(blob, name, 'tokenizer', { maxBytes: 256 * 2 ** 20 });
  if (!isJsonObject(json)) throw new GradPruneError('tokenizer', `${name} is not a JSON object.`, { subject: name });
  return json;
}

/** Everything but the weights: checked, and the header built. Reads only the tokenizer files. */
export async function planGguf(source: GgufSource, dtype: GgufDType): Promise<GgufPlan> {
  const c = source.config;
  checkExpressible(c);
  const tokenizerJson = await readTokenizerJson(source.files, 'tokenizer.json');
  const tokenizerConfig = await readTokenizerJson(source.files, 'tokenizer_config.json');
  const metadata = modelMetadata(source, dtype);
  for (const [k, v] of tokenizerMetadata(tokenizerJson, tokenizerConfig, source.tokenizer, c.vocabSize)) metadata.set(k, v);
  const tensors = ggufTensors(c, source.store, dtype);
  const notes: string[] = [];
  if (c.slidingWindow !== null && c.slidingWindow < c.maxPositionEmbeddings) {
    notes.push(`note: llama.cpp's ${architectureOf(c)} architecture attends over the whole context; this model's sliding window (${c.slidingWindow} tokens) applies only beyond that length`);
  }
  const fallback = dtype === 'q8_0' ? tensors.filter((t) => t.ne.length === 2 && t.type === 'F16') : [];
  if (fallback.length) notes.push(`note: ${fallback.length} matrices have rows that are not whole Q8_0 blocks of 32 and are stored as f16 (${fallback.slice(0, 3).map((t) => t.name).join(', ')}${fallback.length > 3 ? ', …' : ''})`);
  return { dtype, metadata, tensors, layout: ggufHeader(metadata, tensors), notes };
}

/** The GGUF file's bytes in order: the header, then each tensor (converted slice by slice) padded to the alignment. */
export async function* ggufChunks(plan: GgufPlan): AsyncIterable<Uint8Array> {
  yield plan.layout.header;
  let written = 0;
  for (const t of plan.tensors) {
    const expected = tensorDataBytes(t);
    let bytes = 0;
    for await (const values of t.values()) {
      if (values.length % t.ne[0] !== 0) throw new Error(`${t.name}: a slice of ${values.length} values is not whole rows of ${t.ne[0]}`);
      const encoded = encodeAs(t.type, values);
      bytes += encoded.byteLength;
      yield encoded;
    }
    if (bytes !== expected) throw new Error(`${t.name}: wrote ${bytes} bytes, its info says ${expected} (${rowBytes(t.type, t.ne[0])} per row)`);
    written += bytes;
    const pad = alignUp(written) - written;
    if (pad) yield new Uint8Array(pad);
    written += pad;
  }
}

/** The file's size (known before anything is written: the studio shows it before the download). */
export const ggufFileBytes = (plan: GgufPlan): number => plan.layout.fileBytes;
