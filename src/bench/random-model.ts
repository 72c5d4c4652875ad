// Models for the benchmark built from random weights: a Hugging Face-style config.json (normalised by the same
// code that reads real checkpoints) and its tensors as an in-memory safetensors file (BF16, so a 1B-parameter model
// costs 2.5 GB of host memory, not 5). The engine loads them exactly as it loads a real checkpoint.

import type { TokenBatch } from '../data/types';
import { LINEAR_MODULES, linearShape, linearWeightName, normalizeConfig, type ModelConfig } from '../model/config';
import { numberToBf16Bits } from '../model/dtype';
import { encodeSafetensors, SafetensorsFile, TensorStore, type TensorToWrite } from '../model/safetensors';

/** The shape of a Llama-family model, in config.json's terms. */
export interface ModelShape {
  name: string;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  tied?: boolean;
  /** Extra config.json keys (rope scaling, theta). */
  extra?: Record<string, unknown>;
}

export interface TrainingShape {
  model: ModelShape;
  batchSize: number;
  seqLen: number;
}

/** meta-llama/Llama-3.2-1B's config.json shape. */
export const LLAMA_3_2_1B: ModelShape = {
  name: 'Llama-3.2-1B',
  layers: 16,
  hidden: 2048,
  heads: 32,
  kvHeads: 8,
  intermediate: 8192,
  vocab: 128256,
  tied: true,
  extra: {
    rope_theta: 500000,
    rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    max_position_embeddings: 131072,
  },
};

export function configJson(s: ModelShape): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    vocab_size: s.vocab,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    max_position_embeddings: 4096,
    tie_word_embeddings: s.tied ?? false,
    torch_dtype: 'bfloat16',
    ...s.extra,
  };
}

export const randomConfig = (s: ModelShape): ModelConfig => normalizeConfig(configJson(s), `${s.name} config.json`);

/** Parameters of the matrices a token's forward pass multiplies by: every layer's linears and the lm_head. */
export function matmulParams(c: ModelConfig): number {
  let perLayer = 0;
  for (const m of LINEAR_MODULES) {
    const [out, inp] = linearShape(c, m);
    perLayer += out * inp;
  }
  return c.numLayers * perLayer + c.vocabSize * c.hiddenSize;
}

/** FLOPs of a forward pass over B rows of T tokens: the matmuls and causal attention (q·kᵀ and p·v, half masked). */
export function forwardFlops(c: ModelConfig, B: number, T: number): number {
  return 2 * matmulParams(c) * B * T + c.numLayers * 2 * B * c.numHeads * T * T * c.headDim;
}

/** FLOPs of a LoRA step: forward, and a backward that computes dx through the frozen weights (≈ the forward again) and attention's gradients (≈ 2.5× its forward); the adapters' own FLOPs are small and not counted. */
export function loraStepFlops(c: ModelConfig, B: number, T: number): number {
  const attention = c.numLayers * 2 * B * c.numHeads * T * T * c.headDim;
  return 2 * (forwardFlops(c, B, T) - attention) + 3.5 * attention;
}

/**
 * Weight tensors' names and shapes in checkpoint order, as the engine reads them: with Qwen2's q/k/v biases and
 * Qwen3's per-head q/k norms where the config has them.
 */
export function tensorShapes(c: ModelConfig): Array<{ name: string; shape: number[]; norm: boolean }> {
  const C = c.hiddenSize;
  const out: Array<{ name: string; shape: number[]; norm: boolean }> = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, C], norm: false }];
  for (let l = 0; l < c.numLayers; l++) {
    out.push({ name: `model.layers.${l}.input_layernorm.weight`, shape: [C], norm: true });
    out.push({ name: `model.layers.${l}.post_attention_layernorm.weight`, shape: [C], norm: true });
    if (c.qkNorm) {
      out.push({ name: `model.layers.${l}.self_attn.q_norm.weight`, shape: [c.headDim], norm: true });
      out.push({ name: `model.layers.${l}.self_attn.k_norm.weight`, shape: [c.headDim], norm: true });
    }
    for (const m of LINEAR_MODULES) {
      const shape = linearShape(c, m);
      out.push({ name: linearWeightName(l, m), shape, norm: false });
      if (c.bias[m]) out.push({ name: linearWeightName(l, m).replace(/weight$/, 'bias'), shape: [shape[0]], norm: false });
    }
  }
  out.push({ name: 'model.norm.weight', shape: [C], norm: true });
  if (!c.tiedEmbeddings) out.push({ name: 'lm_head.weight', shape: [c.vocabSize, C], norm: false });
  return out;
}

/** A generator of BF16 bit patterns: uniform weights with std 0.02 (a pool drawn once, picked by xorshift32). */
export function randomBf16(seed: number): (out: Uint16Array) => Uint16Array {
  const bound = 0.02 * Math.sqrt(3);
  let x = (seed * 2654435761) >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const pool = Uint16Array.from({ length: 4096 }, () => numberToBf16Bits(((next() / 4294967296) * 2 - 1) * bound));
  return (out) => {
    for (let i = 0; i < out.length; i++) out[i] = pool[next() & 4095];
    return out;
  };
}

/** Random weights (uniform, std 0.02 as transformers initialises Llama; norms 1) as a TensorStore. */
export async function randomStore(c: ModelConfig, seed = 1): Promise<TensorStore> {
  const fill = randomBf16(seed);
  const one = numberToBf16Bits(1);
  const tensors: TensorToWrite[] = tensorShapes(c).map(({ name, shape, norm }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const bits = norm ? new Uint16Array(n).fill(one) : fill(new Uint16Array(n));
    return { name, dtype: 'BF16', shape, data: new Uint8Array(bits.buffer) };
  });
  const blob = new Blob(encodeSafetensors(tensors));
  return TensorStore.fromFiles([await SafetensorsFile.open(blob, 'model.safetensors')]);
}

/** B rows of T random token ids, every position a training target. */
export function randomBatch(B: number, T: number, vocab: number, seed: number): TokenBatch {
  let x = (seed * 747796405 + 2891336453) >>> 0;
  const next = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
  const inputIds = Int32Array.from({ length: B * T }, () => next() % vocab); // (B, T), row by row as before
  return { B, T, inputIds, lossMask: new Int32Array(B * T).fill(1), padTokenId: 0 };
}
