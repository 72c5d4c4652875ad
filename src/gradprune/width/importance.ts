// Importance of LLM-Pruner's removable units. Every importance here is an element-wise score of a linear weight
// (|w| for l1, w² for l2; |w·∂L/∂w| and the Fisher term for the Taylor importances) summed over the lines a unit owns
// in that weight, then reduced over the unit's member weights (q, k, v, o for a head group; gate, up, down for a
// channel) by sum, max or product, as LLM-Pruner's group reduction does. The seam is `LineScorer`: anything that can
// give per-row and per-column sums of its element-wise score for one weight plugs in — the magnitudes below read the
// weight; the Taylor importances read the frozen-weight saliences' per-row / per-column sums (importance/taylor.ts).
// Biases and norms do not score (as LLM-Pruner's importances, which read `.weight`).

import { GradPruneError } from '../../errors';
import { LINEAR_MODULES, linearShape, linearWeightName, type LinearModule, type ModelConfig } from '../../model/config';
import type { TensorStore } from '../../model/safetensors';
import { seededRandom } from '../../random';
import { attentionUnits, mlpUnit, type UnitSlice } from './groups';

/** Per-line sums of an element-wise score over one [out, in] weight. */
export interface LineSums {
  rows: Float64Array; // (out)
  cols: Float64Array; // (in)
}

/** Gives the line sums of one layer's linear weight (read or computed when asked, one weight at a time). */
export type LineScorer = (layer: number, module: LinearModule) => Promise<LineSums>;

export const IMPORTANCE_KINDS = ['l1', 'l2', 'random', 'param_first', 'param_second', 'param_mix'] as const;
export type ImportanceKind = (typeof IMPORTANCE_KINDS)[number];
/** The importances that need the task data's gradients (gradprune/importance/taylor.ts salienceScorer gives their LineScorer). */
export const GRADIENT_IMPORTANCES: ReadonlySet<ImportanceKind> = new Set(['param_first', 'param_second', 'param_mix']);

export const GROUP_REDUCTIONS = ['sum', 'max', 'prod'] as const;
export type GroupReduction = (typeof GROUP_REDUCTIONS)[number];

/** Row and column sums of an element-wise function of a [out, in] weight. */
export function lineSums(W: Float32Array, out: number, inp: number, element: (w: number) => number): LineSums {
  const rows = new Float64Array(out);
  const cols = new Float64Array(inp);
  for (let o = 0; o < out; o++) {
    let r = 0;
    for (let i = 0; i < inp; i++) {
      const s = element(W[o * inp + i]);
      r += s;
      cols[i] += s;
    }
    rows[o] = r;
  }
  return { rows, cols };
}

const MAGNITUDE: Record<'l1' | 'l2', (w: number) => number> = { l1: Math.abs, l2: (w) => w * w };

/** l1 (Σ|w|) or l2 (Σw², LLM-Pruner's MagnitudeImportance with p = 2) line sums, read from the checkpoint's weights. */
export function magnitudeScorer(config: ModelConfig, store: TensorStore, kind: 'l1' | 'l2'): LineScorer {
  return async (layer, module) => {
    const [out, inp] = linearShape(config, module);
    return lineSums(await store.readF32(linearWeightName(layer, module)), out, inp, MAGNITUDE[kind]);
  };
}

/** One number per unit of a layer: per key/value head (with its query heads), per intermediate channel. */
export interface LayerUnitScores {
  attention: Float64Array; // (NKV)
  mlp: Float64Array; // (F)
}

const sliceSum = (sums: LineSums, slice: UnitSlice): number => {
  const line = slice.axis === 'rows' ? sums.rows : sums.cols;
  let s = 0;
  for (const [a, b] of slice.ranges) for (let i = a; i < b; i++) s += line[i];
  return s;
};

function reduce(values: number[], how: GroupReduction): number {
  if (how === 'max') return Math.max(...values);
  if (how === 'prod') return values.reduce((a, b) => a * b, 1);
  return values.reduce((a, b) => a + b, 0);
}

/** A layer's unit scores from a LineScorer, each weight's line sums asked for once. */
export async function layerUnitScores(config: ModelConfig, layer: number, scorer: LineScorer, reduction: GroupReduction): Promise<LayerUnitScores> {
  const sums = new Map<LinearModule, LineSums>();
  for (const m of LINEAR_MODULES) sums.set(m, await scorer(layer, m));
  const score = (slices: UnitSlice[]) => reduce(slices.map((s) => sliceSum(sums.get(s.module)!, s)), reduction);
  const attention = Float64Array.from(attentionUnits(config), (u) => score(u.slices));
  const mlp = Float64Array.from({ length: config.intermediateSize }, (_, c) => score(mlpUnit(c).slices));
  return { attention, mlp };
}

/** Random importance (LLM-Pruner's baseline): uniform in [0, 1) per unit, the same for the same seed. */
export function randomUnitScores(config: ModelConfig, seed: number): LayerUnitScores[] {
  const rand = seededRandom(seed);
  return Array.from({ length: config.numLayers }, () => ({
    attention: Float64Array.from({ length: config.numKvHeads }, rand),
    mlp: Float64Array.from({ length: config.intermediateSize }, rand),
  }));
}

export interface ImportanceOptions {
  importance: ImportanceKind;
  reduction?: GroupReduction;
  seed?: number;
  /** Line sums for the Taylor importances (from the frozen-weight gradients); required for param_*. */
  gradientScorer?: LineScorer;
}

/** The LineScorer of a weight-based importance (null for random); refuses a Taylor importance without gradients. */
export function lineScorerFor(config: ModelConfig, store: TensorStore, opts: ImportanceOptions): LineScorer | null {
  const { importance } = opts;
  if (importance === 'random') return null;
  if (importance === 'l1' || importance === 'l2') return magnitudeScorer(config, store, importance);
  if (opts.gradientScorer) return opts.gradientScorer;
  throw new GradPruneError('input', `The ${importance} importance needs the task data's gradients of the frozen weights, and none were given.`, {
    subject: 'importance',
    hint: 'Give the task data (the CLI: --data FILE), or use --importance l1, l2 or random.',
  });
}

/** Every layer's unit scores for the chosen importance. */
export async function unitScores(config: ModelConfig, store: TensorStore, opts: ImportanceOptions): Promise<LayerUnitScores[]> {
  const scorer = lineScorerFor(config, store, opts);
  if (!scorer) return randomUnitScores(config, opts.seed ?? 0);
  const out: LayerUnitScores[] = [];
  for (let l = 0; l < config.numLayers; l++) out.push(await layerUnitScores(config, l, scorer, opts.reduction ?? 'sum'));
  return out;
}
