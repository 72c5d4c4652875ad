// The decoder as an ONNX graph, in the layout optimum exports for transformers.js ("text-generation-with-past"):
//
//   inputs   input_ids (B, T) int64 · attention_mask (B, S) int64 · position_ids (B, T) int64
//            past_key_values.L.key / .value (B, KV, P, HD)              P = S − T, the cached positions
//   outputs  logits (B, T, V) · present.L.key / .value (B, KV, S, HD)   the cache with this call's T appended
//
// Standard ONNX ops only (opset 17), so onnxruntime-web (wasm, WebGPU) and -node run it as they are. One layer
// template for every supported architecture; what differs is data: q/k/v biases (Qwen2, attention_bias), Qwen3's
// per-head q/k RMSNorm, RoPE frequencies (default, linear, Llama-3 scaling, folded into inv_freq here), GQA, a
// sliding window (Mistral), tied embeddings (the head reads the embedding matrix, stored once).
//
// Linear layers are Gemm(x, W, b, transB=1) on the (B·T, C) rows: W stays [out, in] as the checkpoint stores it,
// so weights stream from the safetensors files unchanged (no transposed copy), and a tied head shares the
// embedding's initializer. Attention keeps grouped heads apart: q (B, KV, H/KV, T, HD) against k (B, KV, 1, S, HD),
// so k and v are never repeated. Numerics follow transformers (eager): RMSNorm in float32 and back, softmax in
// float32, masked positions set to float32's lowest (a fully padded row stays finite).

import type { ModelConfig } from '../../model/config';
import { linearShape, linearWeightName, LINEAR_MODULES, type LinearModule } from '../../model/config';
import { ropeInvFreq } from '../../nn/rope';
import { GraphBuilder } from './graph';
import { DataType } from './proto';

/** The element type of the graph's weights and activations (KV cache and logits included). */
export type OnnxPrecision = 'fp32' | 'fp16';

/** A weight's bytes in the graph's element type (little-endian f32 or f16 bits), in pieces, front to back. */
export type WeightPieces = (name: string, precision: OnnxPrecision) => AsyncIterable<Uint8Array>;

export const ONNX_OPSET = 17;
const FLOAT32_LOWEST = -3.4028234663852886e38;

/** The inputs transformers.js feeds, and the outputs it reads, for layer count `layers`. */
export function decoderIoNames(layers: number): { inputs: string[]; outputs: string[] } {
  const inputs = ['input_ids', 'attention_mask', 'position_ids'];
  const outputs = ['logits'];
  for (let l = 0; l < layers; l++) {
    inputs.push(`past_key_values.${l}.key`, `past_key_values.${l}.value`);
    outputs.push(`present.${l}.key`, `present.${l}.value`);
  }
  return { inputs, outputs };
}

export function buildDecoderGraph(config: ModelConfig, precision: OnnxPrecision, weightPieces: WeightPieces): GraphBuilder {
  const { numLayers: L, hiddenSize: C, numHeads: H, numKvHeads: KV, headDim: HD, vocabSize: V, rmsNormEps: eps } = config;
  const G = H / KV;
  const T_ = precision === 'fp32' ? DataType.FLOAT : DataType.FLOAT16;
  const g = new GraphBuilder(`${config.architecture} (gradprune)`);
  const weight = (name: string, dims: number[]) => g.weight(name, T_, dims, () => weightPieces(name, precision));
  const toCompute = (x: string) => (precision === 'fp32' ? x : g.node('Cast', [x], { to: DataType.FLOAT16 }));
  const toFloat32 = (x: string) => (precision === 'fp32' ? x : g.node('Cast', [x], { to: DataType.FLOAT }));

  const inputIds = g.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const attentionMask = g.input('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']);
  const positionIds = g.input('position_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const past = Array.from({ length: L }, (_, l) => ({
    key: g.input(`past_key_values.${l}.key`, T_, ['batch_size', KV, 'past_sequence_length', HD]),
    value: g.input(`past_key_values.${l}.value`, T_, ['batch_size', KV, 'past_sequence_length', HD]),
  }));

  // Shapes used throughout: (B, T) from input_ids; S from attention_mask.
  const batchSeq = g.node('Shape', [inputIds]); // [B, T]
  const seqLen = g.node('Gather', [batchSeq, g.int64([1], [])], { axis: 0 }); // T (scalar)
  const totalLen = g.node('Gather', [g.node('Shape', [attentionMask]), g.int64([1], [])], { axis: 0 }); // S
  const shape = (...tail: number[]) => g.node('Concat', [batchSeq, g.int64(tail)], { axis: 0 }); // [B, T, ...tail]

  // Mask (B, 1, 1, T, S): key j is visible to query i (cache index P + i) iff j ≤ P + i, j is not padding, and
  // (sliding window) j > P + i − window.
  const queryIndex = g.node('Unsqueeze', [g.node('Range', [g.node('Sub', [totalLen, seqLen]), totalLen, g.int64([1], [])]), g.int64([1])]); // (T, 1)
  const keyIndex = g.node('Unsqueeze', [g.node('Range', [g.int64([0], []), totalLen, g.int64([1], [])]), g.int64([0])]); // (1, S)
  let visible = g.node('LessOrEqual', [keyIndex, queryIndex]); // (T, S)
  if (config.slidingWindow !== null) {
    const inWindow = g.node('Greater', [keyIndex, g.node('Sub', [queryIndex, g.int64([config.slidingWindow], [])])]);
    visible = g.node('And', [visible, inWindow]);
  }
  const notPadding = g.node('Unsqueeze', [g.node('Cast', [attentionMask], { to: DataType.BOOL }), g.int64([1, 2, 3])]); // (B, 1, 1, 1, S)
  const mask = g.node('And', [visible, notPadding]); // (B, 1, 1, T, S)

  // RoPE: angles (B, T, HD/2) = position · inv_freq; cos, sin (B, 1, T, HD), both halves the same.
  const invFreq = g.float32(ropeInvFreq(config.rope, HD), [HD / 2]);
  const positions = g.node('Unsqueeze', [g.node('Cast', [positionIds], { to: DataType.FLOAT }), g.int64([2])]); // (B, T, 1)
  const angles = g.node('Mul', [positions, invFreq]);
  const emb = g.node('Concat', [angles, angles], { axis: -1 });
  const cos = toCompute(g.node('Unsqueeze', [g.node('Cos', [emb]), g.int64([1])]));
  const sin = toCompute(g.node('Unsqueeze', [g.node('Sin', [emb]), g.int64([1])]));

  /** y = w ⊙ x / sqrt(mean(x²) + eps) over the last axis, in float32. */
  const rmsNorm = (x: string, weightName: string, size: number): string => {
    const x32 = toFloat32(x);
    const meanSquare = g.node('ReduceMean', [g.node('Mul', [x32, x32])], { axes: [-1], keepdims: 1 });
    const rstd = g.node('Reciprocal', [g.node('Sqrt', [g.node('Add', [meanSquare, g.float32([eps], [])])])]);
    return g.node('Mul', [weight(weightName, [size]), toCompute(g.node('Mul', [x32, rstd]))]);
  };
  /** x (N, in) → (N, out) through the checkpoint's [out, in] weight (+ bias). */
  const linear = (x: string, layer: number, m: LinearModule): string => {
    const name = linearWeightName(layer, m);
    const dims = linearShape(config, m);
    const inputs = [x, weight(name, dims)];
    if (config.bias[m]) inputs.push(weight(name.replace(/\.weight$/, '.bias'), [dims[0]]));
    return g.node('Gemm', inputs, { transB: 1 });
  };
  const half = HD / 2;
  /** x·cos + rotate_half(x)·sin on (B, heads, T, HD). */
  const rope = (x: string): string => {
    const x1 = g.node('Slice', [x, g.int64([0]), g.int64([half]), g.int64([3])]);
    const x2 = g.node('Slice', [x, g.int64([half]), g.int64([HD]), g.int64([3])]);
    const rotated = g.node('Concat', [g.node('Neg', [x2]), x1], { axis: 3 });
    return g.node('Add', [g.node('Mul', [x, cos]), g.node('Mul', [rotated, sin])]);
  };
  /** (N, heads·HD) → (B, heads, T, HD), with Qwen3's per-head norm before RoPE. */
  const heads = (x: string, count: number, normName: string | null, rotate: boolean): string => {
    let y = g.node('Reshape', [x, shape(count, HD)]); // (B, T, heads, HD)
    if (normName) y = rmsNorm(y, normName, HD);
    y = g.node('Transpose', [y], { perm: [0, 2, 1, 3] });
    return rotate ? rope(y) : y;
  };

  let x = g.node('Reshape', [g.node('Gather', [weight('model.embed_tokens.weight', [V, C]), inputIds], { axis: 0 }), g.int64([-1, C])]); // (N, C)
  const outputs: Array<{ value: string; name: string; dims: Array<number | string> }> = [];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}`;
    const h = rmsNorm(x, `${p}.input_layernorm.weight`, C);
    const q = heads(linear(h, l, 'q_proj'), H, config.qkNorm ? `${p}.self_attn.q_norm.weight` : null, true); // (B, H, T, HD)
    const k = heads(linear(h, l, 'k_proj'), KV, config.qkNorm ? `${p}.self_attn.k_norm.weight` : null, true); // (B, KV, T, HD)
    const v = heads(linear(h, l, 'v_proj'), KV, null, false);
    const presentKey = g.node('Concat', [past[l].key, k], { axis: 2 }); // (B, KV, S, HD)
    const presentValue = g.node('Concat', [past[l].value, v], { axis: 2 });
    outputs.push({ value: presentKey, name: `present.${l}.key`, dims: ['batch_size', KV, 'total_sequence_length', HD] });
    outputs.push({ value: presentValue, name: `present.${l}.value`, dims: ['batch_size', KV, 'total_sequence_length', HD] });

    const qGrouped = g.node('Reshape', [q, g.int64([0, KV, G, -1, HD])]); // (B, KV, G, T, HD)
    const kT = g.node('Transpose', [g.node('Unsqueeze', [presentKey, g.int64([2])])], { perm: [0, 1, 2, 4, 3] }); // (B, KV, 1, HD, S)
    const scores = toFloat32(g.node('Mul', [g.node('MatMul', [qGrouped, kT]), toCompute(g.float32([1 / Math.sqrt(HD)], []))])); // (B, KV, G, T, S)
    const probs = toCompute(g.node('Softmax', [g.node('Where', [mask, scores, g.float32([FLOAT32_LOWEST], [])])], { axis: -1 }));
    const context = g.node('MatMul', [probs, g.node('Unsqueeze', [presentValue, g.int64([2])])]); // (B, KV, G, T, HD)
    const merged = g.node('Reshape', [g.node('Transpose', [g.node('Reshape', [context, g.int64([0, H, -1, HD])])], { perm: [0, 2, 1, 3] }), g.int64([-1, H * HD])]);
    x = g.node('Add', [x, linear(merged, l, 'o_proj')]);

    const h2 = rmsNorm(x, `${p}.post_attention_layernorm.weight`, C);
    const gate = linear(h2, l, 'gate_proj');
    const act = g.node('Mul', [g.node('Mul', [gate, g.node('Sigmoid', [gate])]), linear(h2, l, 'up_proj')]);
    x = g.node('Add', [x, linear(act, l, 'down_proj')]);
  }
  const head = config.tiedEmbeddings ? 'model.embed_tokens.weight' : weight('lm_head.weight', [V, C]);
  const logits = g.node('Reshape', [g.node('Gemm', [rmsNorm(x, 'model.norm.weight', C), head], { transB: 1 }), shape(V)]);
  g.output(logits, 'logits', T_, ['batch_size', 'sequence_length', V]);
  for (const o of outputs) g.output(o.value, o.name, T_, o.dims);
  return g;
}

/** Every tensor the graph reads from the checkpoint (for checks before writing). */
export function decoderWeightNames(config: ModelConfig): string[] {
  const names = ['model.embed_tokens.weight'];
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    names.push(`${p}.input_layernorm.weight`, `${p}.post_attention_layernorm.weight`);
    for (const m of LINEAR_MODULES) {
      names.push(linearWeightName(l, m));
      if (config.bias[m]) names.push(linearWeightName(l, m).replace(/\.weight$/, '.bias'));
    }
    if (config.qkNorm) names.push(`${p}.self_attn.q_norm.weight`, `${p}.self_attn.k_norm.weight`);
  }
  names.push('model.norm.weight');
  if (!config.tiedEmbeddings) names.push('lm_head.weight');
  return names;
}
