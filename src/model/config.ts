// config.json (transformers 4.x or 5.x style, llama / mistral / qwen2 / qwen3) → one frozen ModelConfig.

import { GradPruneError } from '../errors';
import type { WeightDType } from './dtype';

export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2', 'qwen3'] as const;
export type ModelType = (typeof SUPPORTED_MODEL_TYPES)[number];

const CAUSAL_LM_ARCHITECTURE: Record<ModelType, string> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  qwen3: 'Qwen3ForCausalLM',
};
/** "llama (LlamaForCausalLM), mistral (…), …" for error messages. */
export const SUPPORTED_ARCHITECTURES_TEXT = SUPPORTED_MODEL_TYPES.map((t) => `${t} (${CAUSAL_LM_ARCHITECTURE[t]})`).join(', ');

// transformers' defaults where config.json leaves a field out (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config).
const DEFAULT_MAX_POSITIONS: Record<ModelType, number> = { llama: 2048, mistral: 4096 * 32, qwen2: 32768, qwen3: 32768 };

export type RopeConfig =
  | { type: 'default'; theta: number }
  | { type: 'linear'; theta: number; factor: number }
  | {
      type: 'llama3';
      theta: number;
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

/** The seven linear modules of a decoder layer, in the fixtures' order (module_score columns). */
export const LINEAR_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LinearModule = (typeof LINEAR_MODULES)[number];

export interface ModelConfig {
  modelType: ModelType;
  /** e.g. "LlamaForCausalLM" */
  architecture: string;
  numLayers: number;
  hiddenSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  rope: RopeConfig;
  maxPositionEmbeddings: number;
  tiedEmbeddings: boolean;
  /** Which linear modules carry a bias (Qwen2: q, k, v; Llama with attention_bias: q, k, v, o; mlp_bias: the MLP). */
  bias: Readonly<Record<LinearModule, boolean>>;
  /** Qwen3's per-head RMSNorm on q and k. */
  qkNorm: boolean;
  /** Mistral / Qwen sliding-window attention, when the config enables it (null: full attention). */
  slidingWindow: number | null;
  /** The dtype config.json declares (the tensors' own dtype is what loading uses). */
  declaredDType: WeightDType | null;
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  /** The config.json object as given, for export (which changes only the layer count). */
  raw: Readonly<Record<string, unknown>>;
}

/** [out, in] of a linear module's weight. */
export function linearShape(c: ModelConfig, m: LinearModule): [number, number] {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  switch (m) {
    case 'q_proj': return [q, c.hiddenSize];
    case 'k_proj': return [kv, c.hiddenSize];
    case 'v_proj': return [kv, c.hiddenSize];
    case 'o_proj': return [c.hiddenSize, q];
    case 'gate_proj': return [c.intermediateSize, c.hiddenSize];
    case 'up_proj': return [c.intermediateSize, c.hiddenSize];
    case 'down_proj': return [c.hiddenSize, c.intermediateSize];
  }
}

const ATTENTION_MODULES: ReadonlySet<LinearModule> = new Set(['q_proj', 'k_proj', 'v_proj', 'o_proj']);

/** The checkpoint name of a linear module's weight (`…bias` for its bias). */
export const linearWeightName = (layer: number, m: LinearModule): string =>
  `model.layers.${layer}.${ATTENTION_MODULES.has(m) ? 'self_attn' : 'mlp'}.${m}.weight`;

/** The largest layer count, width, vocabulary or head count a config may give (2^24, beyond any published model). */
export const MAX_CONFIG_SIZE = 1 << 24;

const DTYPE_NAMES: Record<string, WeightDType> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16', half: 'F16', float: 'F32' };

/** A config value for a message, whatever it is (JSON.stringify alone fails on some and String() on others). */
function describe(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return typeof v;
  }
}

export function normalizeConfig(json: unknown, fileName = 'config.json'): ModelConfig {
  const bad = (what: string, hint?: string) => new GradPruneError('config', `${fileName}: ${what}.`, { subject: fileName, hint });
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('is not a JSON object');
  const raw = json as Record<string, unknown>;
  const modelType = raw.model_type;
  const declaredArchitecture = Array.isArray(raw.architectures) && typeof raw.architectures[0] === 'string' ? raw.architectures[0] : null;
  if (typeof modelType !== 'string' || !(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    const what = typeof modelType === 'string' ? `model type "${modelType}"` : declaredArchitecture ? `architecture "${declaredArchitecture}" (no "model_type")` : 'a model without "model_type"';
    throw bad(`${what} is not supported`, `GradPrune Studio supports ${SUPPORTED_ARCHITECTURES_TEXT}.`);
  }
  const architecture = declaredArchitecture ?? CAUSAL_LM_ARCHITECTURE[modelType as ModelType];
  if (!architecture.endsWith('ForCausalLM')) {
    throw bad(`architecture "${architecture}" is not a causal language model`, `GradPrune Studio supports ${SUPPORTED_ARCHITECTURES_TEXT}.`);
  }
  const int = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (v === undefined) throw bad(`"${key}" is missing`, 'A Llama / Mistral / Qwen config.json always has it: is this the right file?');
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw bad(`"${key}" must be a positive integer (found ${describe(raw[key])})`);
    // Nothing is sized from these before checkTensors compares them with the tensors present; the bound keeps every
    // product of two of them (a matrix's element count) an exact Number.
    if (v > MAX_CONFIG_SIZE) throw bad(`"${key}" is ${v}, larger than any model has (at most ${MAX_CONFIG_SIZE})`, 'Is this the right config.json?');
    return v;
  };
  const num = (v: unknown, key: string, fallback: number): number => {
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`"${key}" must be a number (found ${describe(v)})`);
    return v;
  };

  const hiddenSize = int('hidden_size');
  const numLayers = int('num_hidden_layers');
  const numHeads = int('num_attention_heads');
  const numKvHeads = int('num_key_value_heads', numHeads);
  const headDim = raw.head_dim == null ? hiddenSize / numHeads : int('head_dim');
  if (!Number.isInteger(headDim)) throw bad(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}; set "head_dim"`);
  if (numHeads % numKvHeads !== 0) throw bad(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  if (headDim % 2 !== 0) throw bad(`head_dim ${headDim} is odd; rotary embeddings need an even head_dim`);
  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu' && act !== 'swish') throw bad(`hidden_act ${describe(act)} is not supported (only silu)`);

  // transformers 5.x keeps everything rope in rope_parameters; 4.x has rope_theta + rope_scaling.
  const ropeKey = raw.rope_parameters != null ? 'rope_parameters' : 'rope_scaling';
  const params = (raw[ropeKey] ?? null) as Record<string, unknown> | null;
  if (params !== null && (typeof params !== 'object' || Array.isArray(params))) throw bad(`"${ropeKey}" must be an object (found ${describe(params)})`);
  const theta = num(params?.rope_theta ?? raw.rope_theta, 'rope_theta', 10000);
  const ropeTypeValue = params?.rope_type ?? params?.type ?? 'default';
  if (typeof ropeTypeValue !== 'string') throw bad(`"${ropeKey}" has rope type ${describe(ropeTypeValue)}; it must be a name such as "default"`);
  const ropeType = ropeTypeValue;
  let rope: RopeConfig;
  if (ropeType === 'default') rope = { type: 'default', theta };
  else if (ropeType === 'linear') rope = { type: 'linear', theta, factor: num(params!.factor, 'rope factor', NaN) };
  else if (ropeType === 'llama3') {
    rope = {
      type: 'llama3',
      theta,
      factor: num(params!.factor, 'rope factor', NaN),
      lowFreqFactor: num(params!.low_freq_factor, 'low_freq_factor', NaN),
      highFreqFactor: num(params!.high_freq_factor, 'high_freq_factor', NaN),
      originalMaxPositionEmbeddings: num(params!.original_max_position_embeddings, 'original_max_position_embeddings', NaN),
    };
  } else throw bad(`rope type "${ropeType}" is not supported`, 'Supported: default, linear, llama3.');
  for (const [k, v] of Object.entries(rope)) if (typeof v === 'number' && !Number.isFinite(v)) throw bad(`rope type "${ropeType}" needs "${k}"`);

  // As the transformers modelling code builds the layers: Qwen2 always has q/k/v biases and never o/MLP ones;
  // Llama and Qwen3 follow attention_bias (q, k, v, o); only Llama has mlp_bias; Mistral has no biases at all.
  const attnBias = (modelType === 'llama' || modelType === 'qwen3') && raw.attention_bias === true;
  const mlpBias = modelType === 'llama' && raw.mlp_bias === true;
  const qkvBias = modelType === 'qwen2' || attnBias;
  const bias = {
    q_proj: qkvBias, k_proj: qkvBias, v_proj: qkvBias,
    o_proj: attnBias,
    gate_proj: mlpBias, up_proj: mlpBias, down_proj: mlpBias,
  };
  const useSliding = modelType === 'mistral' ? raw.sliding_window != null : raw.use_sliding_window === true;
  const slidingWindow = useSliding && raw.sliding_window != null ? int('sliding_window') : null;
  const dtypeValue = raw.dtype ?? raw.torch_dtype;
  const dtypeName = typeof dtypeValue === 'string' && Object.hasOwn(DTYPE_NAMES, dtypeValue) ? dtypeValue : undefined;
  const tokenId = (key: string): number | null => {
    const v = raw[key];
    if (v == null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(`"${key}" must be a token id (found ${describe(v)})`);
    return v;
  };
  const positive = (key: string): number => {
    const v = num(raw[key], key, NaN);
    if (!(v > 0)) throw bad(`"${key}" must be a positive number (found ${describe(raw[key])})`);
    return v;
  };
  const bool = (key: string): boolean => {
    const v = raw[key] ?? false;
    if (typeof v !== 'boolean') throw bad(`"${key}" must be true or false (found ${describe(v)})`);
    return v;
  };
  const eos = raw.eos_token_id;
  if (eos != null && !(Number.isInteger(eos) || (Array.isArray(eos) && eos.every((id) => Number.isInteger(id))))) {
    throw bad(`"eos_token_id" must be a token id or a list of them (found ${describe(eos)})`);
  }

  return Object.freeze({
    modelType: modelType as ModelType,
    architecture,
    numLayers,
    hiddenSize,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: int('intermediate_size'),
    vocabSize: int('vocab_size'),
    rmsNormEps: num(raw.rms_norm_eps, 'rms_norm_eps', 1e-6),
    rope: Object.freeze(rope),
    maxPositionEmbeddings: raw.max_position_embeddings == null ? DEFAULT_MAX_POSITIONS[modelType as ModelType] : positive('max_position_embeddings'),
    tiedEmbeddings: bool('tie_word_embeddings'),
    bias: Object.freeze(bias),
    qkNorm: modelType === 'qwen3',
    slidingWindow,
    declaredDType: (dtypeName && DTYPE_NAMES[dtypeName]) || null,
    bosTokenId: tokenId('bos_token_id'),
    eosTokenId: (eos as number | number[] | undefined) ?? null,
    raw: Object.freeze({ ...raw }),
  });
}
