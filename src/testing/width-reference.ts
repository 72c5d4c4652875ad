// Tests' own width slicing of the CPU reference's f32 weights (an independent path from src/gradprune/width, which
// slices stored bytes): which rows / columns a layer keeps follows HF's GQA rule written out here — query head h
// reads key/value head floor(h / (H / KV)) — and the sliced config is written by hand from the fixture's.
import { LINEAR_MODULES, linearWeightName, normalizeConfig, type LinearModule, type ModelConfig } from '../model/config';
import type { LayerWeights, ModelWeights } from '../nn/reference/weights';

export interface KeptUnits {
  keptKvHeads: readonly number[];
  keptChannels: readonly number[];
}

/** The fixture's config with the new widths (head_dim stated). */
export function slicedConfig(c: ModelConfig, kvHeads: number, intermediate: number): ModelConfig {
  const numHeads = (kvHeads * c.numHeads) / c.numKvHeads;
  return normalizeConfig({ ...c.raw, num_attention_heads: numHeads, num_key_value_heads: kvHeads, intermediate_size: intermediate, head_dim: c.headDim });
}

/** Row indices of the kept heads' projection rows: query heads whose kv head is kept, or the kept kv heads. */
function headLines(c: ModelConfig, keptKv: readonly number[], query: boolean): number[] {
  const lines: number[] = [];
  const heads = query ? c.numHeads : c.numKvHeads;
  for (let h = 0; h < heads; h++) {
    const kv = query ? Math.floor(h / (c.numHeads / c.numKvHeads)) : h;
    if (!keptKv.includes(kv)) continue;
    for (let d = 0; d < c.headDim; d++) lines.push(h * c.headDim + d);
  }
  return lines;
}

function pickRows(W: Float32Array, cols: number, rows: number[]): Float32Array {
  const out = new Float32Array(rows.length * cols);
  rows.forEach((r, i) => {
    for (let j = 0; j < cols; j++) out[i * cols + j] = W[r * cols + j];
  });
  return out;
}

function pickCols(W: Float32Array, cols: number, keep: number[]): Float32Array {
  const rows = W.length / cols;
  const out = new Float32Array(rows * keep.length);
  for (let r = 0; r < rows; r++) keep.forEach((k, j) => (out[r * keep.length + j] = W[r * cols + k]));
  return out;
}

/** The reference weights with every layer sliced to its kept units; the config is `slicedConfig`. */
export function slicedReferenceWeights(w: ModelWeights, kept: readonly KeptUnits[]): ModelWeights {
  const c = w.config;
  const C = c.hiddenSize;
  const config = slicedConfig(c, kept[0].keptKvHeads.length, kept[0].keptChannels.length);
  const layers = w.layers.map((layer, l): LayerWeights => {
    const q = headLines(c, kept[l].keptKvHeads, true);
    const kv = headLines(c, kept[l].keptKvHeads, false);
    const ch = [...kept[l].keptChannels];
    const rowsOf: Partial<Record<LinearModule, number[]>> = { q_proj: q, k_proj: kv, v_proj: kv, gate_proj: ch, up_proj: ch };
    const colsOf: Partial<Record<LinearModule, number[]>> = { o_proj: q, down_proj: ch };
    const linear = {} as LayerWeights['linear'];
    for (const m of LINEAR_MODULES) {
      const { W, b } = layer.linear[m];
      const inp = m === 'o_proj' ? c.numHeads * c.headDim : m === 'down_proj' ? c.intermediateSize : C;
      const rows = rowsOf[m];
      const cols = colsOf[m];
      linear[m] = {
        W: rows ? pickRows(W, inp, rows) : cols ? pickCols(W, inp, cols) : W,
        b: b && rows ? pickRows(b, 1, rows) : b,
      };
    }
    return { ...layer, linear };
  });
  return { ...w, config, layers };
}

/**
 * LLM-Pruner's first-order group importance written out for a Llama-family layer: Σ |W ⊙ G| over each key/value
 * head group's q/k/v rows and o columns, and over each channel's gate/up rows and down column. `G` by weight name.
 */
export function referenceFirstOrderScores(w: ModelWeights, G: ReadonlyMap<string, ArrayLike<number>>): { attention: number[]; mlp: number[] }[] {
  const c = w.config;
  const { headDim: HD, hiddenSize: C, intermediateSize: F } = c;
  const group = c.numHeads / c.numKvHeads;
  return w.layers.map((layer, l) => {
    const s = (m: LinearModule, i: number) => Math.abs(layer.linear[m].W[i] * G.get(linearWeightName(l, m))![i]);
    const attention = Array.from({ length: c.numKvHeads }, (_, kv) => {
      let t = 0;
      for (let h = 0; h < c.numHeads; h++) {
        if (Math.floor(h / group) !== kv) continue;
        for (let d = 0; d < HD; d++) for (let i = 0; i < C; i++) t += s('q_proj', (h * HD + d) * C + i) + s('o_proj', i * c.numHeads * HD + h * HD + d);
      }
      for (let d = 0; d < HD; d++) for (let i = 0; i < C; i++) t += s('k_proj', (kv * HD + d) * C + i) + s('v_proj', (kv * HD + d) * C + i);
      return t;
    });
    const mlp = Array.from({ length: F }, (_, ch) => {
      let t = 0;
      for (let i = 0; i < C; i++) t += s('gate_proj', ch * C + i) + s('up_proj', ch * C + i) + s('down_proj', i * F + ch);
      return t;
    });
    return { attention, mlp };
  });
}
