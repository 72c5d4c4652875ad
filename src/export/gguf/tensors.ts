// The checkpoint's tensors under llama.cpp's names and layouts, each with a reader that yields its values in row
// slices (a 128k × 4096 embedding is never one array):
//
//   model.embed_tokens → token_embd      layers.N.input_layernorm → blk.N.attn_norm
//   model.norm → output_norm             layers.N.post_attention_layernorm → blk.N.ffn_norm
//   lm_head → output (absent when tied)  self_attn.{q,k,v,o}_proj → blk.N.attn_{q,k,v,output} (+ .bias)
//   self_attn.{q,k}_norm → blk.N.attn_{q,k}_norm (Qwen3)   mlp.{gate,up,down}_proj → blk.N.ffn_{gate,up,down} (+ .bias)
//   rope_freqs (Llama-3 RoPE scaling): per rotary pair, the divisor llama.cpp applies to the base frequency
//
// llama.cpp's `llama` architecture rotates interleaved pairs (x0, x1), (x2, x3)… while Hugging Face rotates halves
// (x_i, x_{i+d/2}): like llama.cpp's converter, q and k rows (weights and biases) are permuted within each head so
// that HF's pair (i, i+d/2) lands on rows (2i, 2i+1). Qwen2 / Qwen3 rotate halves in llama.cpp too (NEOX): no change.
// Norms, biases and rope_freqs are f32 as the converter writes them; matrices f16, or Q8_0 where a row is whole
// blocks of 32 (else f16, as the converter falls back).

import type { ModelConfig } from '../../model/config';
import { LINEAR_MODULES, linearShape, linearWeightName, type LinearModule } from '../../model/config';
import type { TensorStore } from '../../model/safetensors';
import { Q8_0_BLOCK, type GgmlTypeName, type TensorInfo } from './format';

export type GgufDType = 'f16' | 'q8_0';

export interface GgufTensor extends TensorInfo {
  /** The values in llama.cpp's layout, row slice by row slice (f32). */
  values(): AsyncIterable<Float32Array>;
}

const GGUF_MODULE: Record<LinearModule, string> = {
  q_proj: 'attn_q', k_proj: 'attn_k', v_proj: 'attn_v', o_proj: 'attn_output',
  gate_proj: 'ffn_gate', up_proj: 'ffn_up', down_proj: 'ffn_down',
};

/** Rows read at once: about this many elements (64 MiB of f32). */
const SLICE_ELEMENTS = 16 * 2 ** 20;

/** Whether llama.cpp runs this model type as its `llama` architecture (interleaved RoPE: q/k permuted). */
export const usesLlamaArch = (config: ModelConfig): boolean => config.modelType === 'llama' || config.modelType === 'mistral';

export function ggufTensors(config: ModelConfig, store: TensorStore, dtype: GgufDType): GgufTensor[] {
  const matrixType = (cols: number): GgmlTypeName => (dtype === 'q8_0' && cols % Q8_0_BLOCK === 0 ? 'Q8_0' : 'F16');
  const permute = usesLlamaArch(config);
  const out: GgufTensor[] = [];
  const vector = (name: string, source: string): void => {
    const [n] = store.info(source).shape;
    out.push({ name, ne: [n], type: 'F32', values: () => once(store.readF32(source)) });
  };
  /** A [rows, cols] matrix; `headRows` > 0: permute rows within each group of that many (one head). */
  const matrix = (name: string, source: string, rows: number, cols: number, headRows = 0): void => {
    out.push({ name, ne: [cols, rows], type: matrixType(cols), values: () => rowSlices(store, source, rows, cols, headRows) });
  };
  const rope = ropeFreqs(config);
  if (rope) out.push({ name: 'rope_freqs.weight', ne: [rope.length], type: 'F32', values: () => once(Promise.resolve(rope)) });
  matrix('token_embd.weight', 'model.embed_tokens.weight', config.vocabSize, config.hiddenSize);
  for (let l = 0; l < config.numLayers; l++) {
    const blk = `blk.${l}`;
    vector(`${blk}.attn_norm.weight`, `model.layers.${l}.input_layernorm.weight`);
    for (const m of LINEAR_MODULES) {
      const [rows, cols] = linearShape(config, m);
      const headRows = permute && (m === 'q_proj' || m === 'k_proj') ? config.headDim : 0;
      const weight = linearWeightName(l, m);
      matrix(`${blk}.${GGUF_MODULE[m]}.weight`, weight, rows, cols, headRows);
      if (config.bias[m]) {
        const bias = weight.replace(/\.weight$/, '.bias');
        out.push({ name: `${blk}.${GGUF_MODULE[m]}.bias`, ne: [rows], type: 'F32', values: () => rowSlices(store, bias, rows, 1, headRows) });
      }
    }
    if (config.qkNorm) {
      vector(`${blk}.attn_q_norm.weight`, `model.layers.${l}.self_attn.q_norm.weight`);
      vector(`${blk}.attn_k_norm.weight`, `model.layers.${l}.self_attn.k_norm.weight`);
    }
    vector(`${blk}.ffn_norm.weight`, `model.layers.${l}.post_attention_layernorm.weight`);
  }
  vector('output_norm.weight', 'model.norm.weight');
  if (!config.tiedEmbeddings) matrix('output.weight', 'lm_head.weight', config.vocabSize, config.hiddenSize);
  return out;
}

async function* once(values: Promise<Float32Array>): AsyncIterable<Float32Array> {
  yield await values;
}

/** Rows of a [rows, cols] tensor (a bias is [rows, 1]) in slices of whole heads, permuted per head when asked. */
async function* rowSlices(store: TensorStore, name: string, rows: number, cols: number, headRows: number): AsyncIterable<Float32Array> {
  const group = headRows || 1;
  const perSlice = Math.max(group, Math.floor(SLICE_ELEMENTS / cols / group) * group);
  for (let r0 = 0; r0 < rows; r0 += perSlice) {
    const r1 = Math.min(rows, r0 + perSlice);
    const values = cols === 1 ? (await store.readF32(name)).subarray(r0, r1) : ((await store.readRows(name, r0, r1, 'f32')) as Float32Array);
    yield headRows ? permuteHeads(values, headRows, cols) : values;
  }
}

/** Within each head of `headRows` rows: row (j·half + i) → row (2i + j), j ∈ {0, 1}, i < half. */
export function permuteHeads(values: Float32Array, headRows: number, cols: number): Float32Array {
  const half = headRows / 2;
  const out = new Float32Array(values.length);
  const heads = values.length / (headRows * cols);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < 2; j++) {
      for (let i = 0; i < half; i++) {
        const from = (h * headRows + j * half + i) * cols;
        out.set(values.subarray(from, from + cols), (h * headRows + 2 * i + j) * cols);
      }
    }
  }
  return out;
}

/**
 * Llama-3 RoPE scaling as llama.cpp applies it: one factor per rotary pair i < head_dim/2 by which the pair's base
 * frequency theta^(-2i/d) is divided (the same wavelength bands as transformers' llama3 rope). Null for other RoPE.
 */
export function ropeFreqs(config: ModelConfig): Float32Array | null {
  const rope = config.rope;
  if (rope.type !== 'llama3') return null;
  const d = config.headDim;
  const lowWavelen = rope.originalMaxPositionEmbeddings / rope.lowFreqFactor;
  const highWavelen = rope.originalMaxPositionEmbeddings / rope.highFreqFactor;
  const out = new Float32Array(d / 2);
  for (let i = 0; i < d / 2; i++) {
    const freq = rope.theta ** (-(2 * i) / d);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = rope.factor;
    else {
      const smooth = (rope.originalMaxPositionEmbeddings / wavelen - rope.lowFreqFactor) / (rope.highFreqFactor - rope.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / rope.factor + smooth);
    }
  }
  return out;
}
