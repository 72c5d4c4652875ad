// The before / after table of a pruning job: dense, pruned, pruned + recovered — parameters, weight memory, forward
// time per token, held-out loss, multiple-choice accuracy. `measureModel` measures one model on the GPU;
// `comparisonRows` turns the measurements into rows (plain data) that the UI and the CLI both render;
// `formatComparisonTable` is the CLI's text rendering.

import { evalBatches } from '../data/batch';
import { formatBytes, formatCount } from '../format';
import type { MultipleChoiceItem, TokenizedExample } from '../data/types';
import { expectedTensors } from '../model/checkpoint';
import type { ModelConfig } from '../model/config';
import { dtypeBytes, type WeightDType } from '../model/dtype';
import { numel, type TensorStore } from '../model/safetensors';
import type { TextTokenizer } from '../model/tokenizer';
import type { Gpu } from '../gpu/device';
import type { LoraAdapter, LoraConfig } from '../nn/lora';
import type { ResolvedPrecision, WeightPrecision, WeightStorage } from '../nn/precision';
import type { Residency } from '../nn/weights';
import { measureForward, type ForwardCost } from './cost';
import type { WeightsSource } from '../nn/model';
import { gpuScoringModel, loadEvalGpuModel } from './engines';
import { heldOutLoss, type HeldOutLoss } from './loss';
import { scoreMultipleChoice } from './multiple-choice';
import type { Accuracy } from './recovery';

/** What one row of the table says about a model. Missing measurements are null. */
export interface ModelMeasurement {
  label: string;
  config: ModelConfig;
  /** The dtype the weights are stored in (what the weight memory counts). */
  dtype: WeightDType;
  /** A LoRA adapter kept beside the weights (not merged) adds its parameters. */
  lora?: { config: LoraConfig; adapters: readonly Pick<LoraAdapter, 'A' | 'B'>[] } | null;
  heldOut?: HeldOutLoss | null;
  accuracy?: Accuracy | null;
  cost?: ForwardCost | null;
  /** Greedy answers scored against the labels (exact-match.ts); absent: not asked. */
  exactMatch?: { exactMatch: number; normalizedExactMatch: number; items: number } | null;
  /** How the GPU held the weights while measuring, and why in that precision (absent: not measured on the GPU). */
  onGpu?: { storage: WeightStorage; residency: Residency; precision: ResolvedPrecision } | null;
}

export interface ComparisonRow {
  label: string;
  layers: number;
  parameters: number;
  /** Bytes of the weights in their stored dtype (the adapter's in f32). */
  weightBytes: number;
  /** parameters / the first row's parameters. */
  parameterRatio: number;
  msPerToken: number | null;
  /** the first row's time / this row's time (> 1: faster); null without both timings. */
  speedup: number | null;
  heldOutLoss: number | null;
  perplexity: number | null;
  acc: number | null;
  accNorm: number | null;
  /** Exact match of greedy answers, and its normalised variant (absent or null: not measured). */
  exactMatch?: number | null;
  normalizedExactMatch?: number | null;
  /** The weight storage and residency the GPU measured this model with (null: not measured on the GPU). */
  storage: WeightStorage | null;
  residency: Residency | null;
}

/** Parameters of a decoder as its config describes it (tied embeddings counted once). */
export const parameterCount = (config: ModelConfig): number => expectedTensors(config).reduce((n, t) => n + numel(t.shape), 0);

/** One row per measurement, in order; ratios are against the first (the dense model, when it is measured). */
export function comparisonRows(measurements: readonly ModelMeasurement[]): ComparisonRow[] {
  const rows = measurements.map((m) => {
    const adapterParams = (m.lora?.adapters ?? []).reduce((n, a) => n + a.A.length + a.B.length, 0);
    const base = parameterCount(m.config);
    return {
      label: m.label,
      layers: m.config.numLayers,
      parameters: base + adapterParams,
      weightBytes: base * dtypeBytes(m.dtype) + adapterParams * 4,
      parameterRatio: 1,
      msPerToken: m.cost?.msPerToken ?? null,
      speedup: null as number | null,
      heldOutLoss: m.heldOut?.loss ?? null,
      perplexity: m.heldOut?.perplexity ?? null,
      acc: m.accuracy?.acc ?? null,
      accNorm: m.accuracy?.accNorm ?? null,
      exactMatch: m.exactMatch?.exactMatch ?? null,
      normalizedExactMatch: m.exactMatch?.normalizedExactMatch ?? null,
      storage: m.onGpu?.storage ?? null,
      residency: m.onGpu?.residency ?? null,
    };
  });
  const first = rows[0];
  for (const r of rows) {
    r.parameterRatio = first ? r.parameters / first.parameters : 1;
    r.speedup = first?.msPerToken && r.msPerToken ? first.msPerToken / r.msPerToken : null;
  }
  return rows;
}

export interface MeasureOptions {
  batchSize: number;
  seqLen: number;
  /** Held-out examples for the loss (none: no loss). */
  heldOut?: readonly TokenizedExample[];
  padTokenId?: number;
  /** Questions scored for accuracy (with their tokenizer). */
  multipleChoice?: { tokenizer: TextTokenizer; items: readonly MultipleChoiceItem[] } | null;
  /** Time the forward pass (default true); `repeats` timed passes after one warm-up. */
  timeForward?: boolean;
  repeats?: number;
  lora?: { config: LoraConfig; adapters: readonly LoraAdapter[] } | null;
  /**
   * Weight storage: 'auto' (f16 where the adapter has shader-f16), 'f16' or 'f32'. No default: every model of one
   * table must be measured in the same precision, so each caller says which.
   */
  weights: WeightPrecision;
  /** GPU memory budget in bytes (default what the adapter allows): over it, the layers stream. */
  maxGpuMemory?: number | null;
  /** Weights already on the device (the worker's cache); without, the model's weights are uploaded for this measurement. */
  source?: WeightsSource;
  /** How far it is: held-out batches scored, then questions, then timed passes (`total` of each). */
  onProgress?: (phase: MeasurePhase, done: number, total: number) => void;
}

export type MeasurePhase = 'loss' | 'choices' | 'timing';

/**
 * Load the model into the GPU engine on `gpu` and measure what the table needs. Measure every model of a table on
 * one device: a device compiles each kernel once, and timings from one device compare.
 */
export async function measureModel(
  gpu: Gpu,
  label: string,
  model: { config: ModelConfig; store: TensorStore; dtype: WeightDType },
  opts: MeasureOptions,
): Promise<ModelMeasurement> {
  const lora = opts.lora ?? null;
  const { onProgress } = opts;
  const { model: engine, precision } = await loadEvalGpuModel(gpu, model.config, model.store, opts);
  try {
    const scoring = gpuScoringModel(engine);
    const batches = Math.ceil((opts.heldOut?.length ?? 0) / opts.batchSize);
    const heldOut = opts.heldOut?.length
      ? await heldOutLoss(scoring, evalBatches(opts.heldOut, { batchSize: opts.batchSize, padTokenId: opts.padTokenId ?? 0 }), (done) => onProgress?.('loss', done, batches))
      : null;
    const mc = opts.multipleChoice?.items.length
      ? await scoreMultipleChoice(scoring, opts.multipleChoice.tokenizer, opts.multipleChoice.items, {
          batchSize: opts.batchSize,
          onProgress: onProgress && ((done, total) => onProgress('choices', done, total)),
        })
      : null;
    const repeats = opts.repeats ?? 5;
    const timed = opts.timeForward !== false;
    if (timed) onProgress?.('timing', 0, repeats);
    const cost = timed ? await measureForward(engine, { repeats, warmup: 1 }) : null;
    gpu.throwIfFailed();
    return {
      label,
      config: model.config,
      dtype: model.dtype,
      lora,
      heldOut,
      accuracy: mc ? { acc: mc.acc, accNorm: mc.accNorm, items: mc.items } : null,
      cost,
      onGpu: { storage: engine.weightStorage, residency: engine.weights.residency, precision },
    };
  } finally {
    engine.destroy();
  }
}

const dash = '–';

/** The rows as an aligned text table (the CLI's rendering). */
export function formatComparisonTable(rows: readonly ComparisonRow[]): string {
  const header = ['model', 'layers', 'parameters', 'weights', 'ms/token', 'held-out loss', 'ppl', 'acc', 'acc_norm'];
  const cells = rows.map((r) => [
    r.label,
    String(r.layers),
    `${formatCount(r.parameters)} (${(r.parameterRatio * 100).toFixed(0)}%)`,
    formatBytes(r.weightBytes),
    r.msPerToken === null ? dash : `${r.msPerToken.toFixed(3)}${r.speedup !== null && r !== rows[0] ? ` (${r.speedup.toFixed(2)}×)` : ''}`,
    r.heldOutLoss === null ? dash : r.heldOutLoss.toFixed(4),
    r.perplexity === null ? dash : r.perplexity.toFixed(2),
    r.acc === null ? dash : `${(r.acc * 100).toFixed(1)}%`,
    r.accNorm === null ? dash : `${(r.accNorm * 100).toFixed(1)}%`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), ...cells.map(line)].join('\n');
}
