// Tests' own width slicing of the CPU reference's f32 weights (an independent path from src/gradprune/width, which
// slices stored bytes): which rows / columns a layer keeps follows HF's GQA rule written out here — query head h
// reads key/value head floor(h / (H / KV)) — and the sliced config is written by hand from the fixture's.
import { LINEAR_MODULES, normalizeConfig, type LinearModule, type ModelConfig } from '../model/config';
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
