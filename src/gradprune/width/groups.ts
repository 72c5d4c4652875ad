// LLM-Pruner's dependency groups for the Llama family with grouped-query attention. A removable attention unit is
// one key/value head with the query heads that share it (query head h uses kv head floor(h / (H / KV))): their
// q_proj / k_proj / v_proj rows (and q/k/v biases, Qwen2) and their o_proj columns. A removable MLP unit is one
// intermediate channel: its gate_proj and up_proj rows (and their biases, Llama mlp_bias) and its down_proj column.
// Everything of hidden size (norms, o_proj / down_proj rows and biases) and Qwen3's q_norm / k_norm (per head_dim,
// shared by every head) is untouched: removing whole heads never changes head_dim.

import type { LinearModule, ModelConfig } from '../../model/config';

/** Which axis of a [out, in] weight a unit owns lines of. */
export type LineAxis = 'rows' | 'cols';

/** The lines of one tensor that belong to a unit: [start, end) ranges of rows or columns. */
export interface UnitSlice {
  module: LinearModule;
  axis: LineAxis;
  ranges: [number, number][];
}

export interface AttentionUnit {
  kind: 'attention';
  /** The key/value head. */
  kvHead: number;
  /** The query heads that read it, ascending. */
  queryHeads: number[];
  slices: UnitSlice[];
}

export interface MlpUnit {
  kind: 'mlp';
  channel: number;
  slices: UnitSlice[];
}

export type WidthUnit = AttentionUnit | MlpUnit;

/** Query heads per key/value head (H / KV). */
export const queryGroupSize = (c: ModelConfig): number => c.numHeads / c.numKvHeads;

/** The query heads that share key/value head `kvHead`. */
export function queryHeadsOf(c: ModelConfig, kvHead: number): number[] {
  const g = queryGroupSize(c);
  return Array.from({ length: g }, (_, i) => kvHead * g + i);
}

/** One attention unit per key/value head of a layer (every layer has the same; the unit knows no layer). */
export function attentionUnits(c: ModelConfig): AttentionUnit[] {
  const HD = c.headDim;
  return Array.from({ length: c.numKvHeads }, (_, kvHead) => {
    const queryHeads = queryHeadsOf(c, kvHead);
    // The group's query heads are consecutive, so their q rows / o columns are one range.
    const q: [number, number] = [queryHeads[0] * HD, (queryHeads[queryHeads.length - 1] + 1) * HD];
    const kv: [number, number] = [kvHead * HD, (kvHead + 1) * HD];
    return {
      kind: 'attention',
      kvHead,
      queryHeads,
      slices: [
        { module: 'q_proj', axis: 'rows', ranges: [q] },
        { module: 'k_proj', axis: 'rows', ranges: [kv] },
        { module: 'v_proj', axis: 'rows', ranges: [kv] },
        { module: 'o_proj', axis: 'cols', ranges: [q] },
      ],
    };
  });
}

/** The MLP unit of intermediate channel `channel`. */
export function mlpUnit(channel: number): MlpUnit {
  const r: [number, number] = [channel, channel + 1];
  return {
    kind: 'mlp',
    channel,
    slices: [
      { module: 'gate_proj', axis: 'rows', ranges: [r] },
      { module: 'up_proj', axis: 'rows', ranges: [r] },
      { module: 'down_proj', axis: 'cols', ranges: [r] },
    ],
  };
}

/** The lines of each linear weight a layer keeps, given the kv heads and channels it keeps (ascending). */
export interface KeptLines {
  /** q rows = o columns (query heads of the kept kv heads), k/v rows (the kept kv heads), gate/up rows = down columns. */
  q: number[];
  kv: number[];
  mlp: number[];
}

export function keptLines(c: ModelConfig, keptKvHeads: readonly number[], keptChannels: readonly number[]): KeptLines {
  const HD = c.headDim;
  const heads = (hs: number[]) => hs.flatMap((h) => Array.from({ length: HD }, (_, d) => h * HD + d));
  return {
    q: heads(keptKvHeads.flatMap((kv) => queryHeadsOf(c, kv))),
    kv: heads([...keptKvHeads]),
    mlp: [...keptChannels],
  };
}

/** Which kept lines a linear weight (and its bias) is sliced by: rows, columns, or nothing (hidden-size axes). */
export function slicingOf(module: LinearModule, kept: KeptLines): { rows: number[] | null; cols: number[] | null } {
  switch (module) {
    case 'q_proj': return { rows: kept.q, cols: null };
    case 'k_proj':
    case 'v_proj': return { rows: kept.kv, cols: null };
    case 'o_proj': return { rows: null, cols: kept.q };
    case 'gate_proj':
    case 'up_proj': return { rows: kept.mlp, cols: null };
    case 'down_proj': return { rows: null, cols: kept.mlp };
  }
}
