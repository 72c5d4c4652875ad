// What a person needs to know about a checkpoint before running it: shape, exact parameter counts, weight memory,
// and whether the weights fit the WebGPU adapter.

import { GradPruneError } from '../errors';
import { formatBytes, formatCount, formatExact } from '../format';
import type { AdapterSummary } from '../gpu/device';
import type { Checkpoint } from './checkpoint';
import { expectedTensors } from './checkpoint';
import type { ModelConfig, RopeConfig } from './config';
import { dtypeBytes, type WeightDType } from './dtype';
import { numel } from './safetensors';

export interface ParamCounts {
  total: number;
  embeddings: number;
  /** 0 when the output layer shares the embedding matrix. */
  lmHead: number;
  /** Parameters of one decoder layer (every layer has the same tensors). */
  perLayer: number;
  allLayers: number;
  finalNorm: number;
}

/** The config's shape fields, as the summary shows them. */
type SummaryShape = Pick<
  ModelConfig,
  'architecture' | 'modelType' | 'numLayers' | 'hiddenSize' | 'numHeads' | 'numKvHeads' | 'headDim' | 'intermediateSize' | 'vocabSize' | 'tiedEmbeddings' | 'rope' | 'maxPositionEmbeddings'
>;

export interface ModelSummary extends SummaryShape {
  name: string;
  dtype: WeightDType;
  params: ParamCounts;
  /** Bytes of all the model's tensors held on the GPU as f16 or f32, and as stored in the files. */
  weightBytes: { f16: number; f32: number; stored: number };
  /** Tensors the model uses (extras such as rotary inv_freq excluded). */
  tensorCount: number;
  /** Tensors in the files that the model does not use. */
  extraTensors: string[];
  /** Every tensor the model uses, with its element count, for memory planning. */
  tensors: { name: string; shape: number[]; numel: number }[];
  files: { name: string; bytes: number }[];
}

export function summarizeModel(ckpt: Checkpoint): ModelSummary {
  const c = ckpt.config;
  // Counts come from the tensors in the files (openCheckpoint has checked them against the config).
  const tensors = expectedTensors(c).map((e) => {
    const shape = ckpt.store.info(e.name).shape;
    return { name: e.name, shape: [...shape], numel: numel(shape) };
  });
  const count = (pred: (name: string) => boolean) => tensors.reduce((s, t) => (pred(t.name) ? s + t.numel : s), 0);
  const embeddings = count((n) => n === 'model.embed_tokens.weight');
  const lmHead = count((n) => n === 'lm_head.weight');
  const finalNorm = count((n) => n === 'model.norm.weight');
  const allLayers = count((n) => n.startsWith('model.layers.'));
  const perLayer = count((n) => n.startsWith('model.layers.0.'));
  const total = tensors.reduce((s, t) => s + t.numel, 0);
  const storedBytes = tensors.reduce((s, t) => s + t.numel * dtypeBytes(ckpt.store.info(t.name).dtype), 0);
  return {
    name: ckpt.name,
    architecture: c.architecture,
    modelType: c.modelType,
    numLayers: c.numLayers,
    hiddenSize: c.hiddenSize,
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    headDim: c.headDim,
    intermediateSize: c.intermediateSize,
    vocabSize: c.vocabSize,
    dtype: ckpt.dtype,
    tiedEmbeddings: c.tiedEmbeddings,
    rope: c.rope,
    maxPositionEmbeddings: c.maxPositionEmbeddings,
    params: { total, embeddings, lmHead, perLayer, allLayers, finalNorm },
    weightBytes: { f16: total * 2, f32: total * 4, stored: storedBytes },
    tensorCount: tensors.length,
    extraTensors: ckpt.extraTensors,
    tensors,
    files: [...ckpt.files].map(([name, blob]) => ({ name, bytes: blob.size })).sort((a, b) => a.name.localeCompare(b.name)),
  };
}

/**
 * How much of the adapter the weights may use. WebGPU does not reveal total GPU memory; the only size it
 * reports is `maxBufferSize`, the largest single buffer. The studio assumes the weights may take up to
 * WEIGHT_BUDGET_BUFFERS such buffers. This is an assumption, not a measurement: a GPU with less memory than
 * that fails later with an out-of-memory error (reported as a 'memory' GradPruneError), and training needs
 * activations, LoRA state and optimizer moments on top (pass them as `extraBytes`).
 */
export const WEIGHT_BUDGET_BUFFERS = 4;

export interface FitReport {
  fits: boolean;
  /** f16 when the adapter has shader-f16, else f32. */
  weightPrecision: 'f16' | 'f32';
  neededBytes: number;
  availableBytes: number;
  largestTensor: { name: string; bytes: number };
  /** Why it does not fit (empty when it fits). */
  reasons: string[];
  /** The rule used, in one sentence, for the person reading the report. */
  rule: string;
}

export interface FitOptions {
  /** Force a precision (default: f16 when the adapter has shader-f16). */
  weightPrecision?: 'f16' | 'f32';
  /** GPU memory needed beyond the weights (activations, LoRA, optimizer state). */
  extraBytes?: number;
}

/**
 * The rule: (1) every tensor fits one storage binding (`maxStorageBufferBindingSize`), or can be split by rows
 * into bindings, which needs one row to fit; (2) weights plus `extraBytes` fit WEIGHT_BUDGET_BUFFERS × maxBufferSize.
 */
export function checkFit(summary: ModelSummary, adapter: AdapterSummary, opts: FitOptions = {}): FitReport {
  const weightPrecision = opts.weightPrecision ?? (adapter.shaderF16 ? 'f16' : 'f32');
  const bytesPerElement = weightPrecision === 'f16' ? 2 : 4;
  const binding = Math.min(adapter.maxStorageBufferBindingSize, adapter.maxBufferSize);
  const reasons: string[] = [];

  let largestTensor = { name: '', bytes: 0 };
  for (const t of summary.tensors) {
    const bytes = t.numel * bytesPerElement;
    if (bytes > largestTensor.bytes) largestTensor = { name: t.name, bytes };
    const rowBytes = (t.shape.length > 1 ? numel(t.shape.slice(1)) : t.numel) * bytesPerElement;
    if (bytes > binding && rowBytes > binding) {
      reasons.push(`tensor ${t.name} [${t.shape.join(', ')}] needs ${formatBytes(bytes)} and one of its rows ${formatBytes(rowBytes)}, over the adapter's largest binding (${formatBytes(binding)}), so it cannot be split into bindings`);
    }
  }
  const neededBytes = summary.params.total * bytesPerElement + (opts.extraBytes ?? 0);
  const availableBytes = WEIGHT_BUDGET_BUFFERS * adapter.maxBufferSize;
  if (neededBytes > availableBytes) {
    reasons.push(`the ${weightPrecision} weights${opts.extraBytes ? ' and working memory' : ''} need ${formatBytes(neededBytes)}, over the budget of ${formatBytes(availableBytes)} (${WEIGHT_BUDGET_BUFFERS} × the adapter's maxBufferSize ${formatBytes(adapter.maxBufferSize)})`);
  }
  return {
    fits: reasons.length === 0,
    weightPrecision,
    neededBytes,
    availableBytes,
    largestTensor,
    reasons,
    rule: `every tensor fits a ${formatBytes(binding)} storage binding or splits by rows into several, and the ${weightPrecision} weights fit ${WEIGHT_BUDGET_BUFFERS} × maxBufferSize (WebGPU does not reveal total GPU memory)`,
  };
}

/** Throws a 'memory' GradPruneError ("needs X, adapter allows Y") when the model does not fit. */
export function assertFits(summary: ModelSummary, adapter: AdapterSummary, opts: FitOptions = {}): FitReport {
  const fit = checkFit(summary, adapter, opts);
  if (!fit.fits) {
    throw new GradPruneError('memory', `${summary.name} does not fit this GPU: it needs ${formatBytes(fit.neededBytes)} of ${fit.weightPrecision} weights, the adapter (${adapter.name}) allows ${formatBytes(fit.availableBytes)}; ${fit.reasons.join('; ')}.`, {
      subject: fit.reasons.length && fit.neededBytes <= fit.availableBytes ? fit.largestTensor.name : summary.name,
      hint: 'Use a smaller model, or a GPU and browser that allow larger buffers.',
    });
  }
  return fit;
}

/** 1234567 → "1,234,567 (1.23 M)". */
const countWithShort = (n: number): string => (n < 1000 ? formatExact(n) : `${formatExact(n)} (${formatCount(n)})`);

function formatRope(r: RopeConfig): string {
  switch (r.type) {
    case 'default': return `default, theta ${r.theta}`;
    case 'linear': return `linear ×${r.factor}, theta ${r.theta}`;
    case 'llama3': return `llama3 ×${r.factor} (low ${r.lowFreqFactor}, high ${r.highFreqFactor}, original ${r.originalMaxPositionEmbeddings}), theta ${r.theta}`;
  }
}

/** The CLI's text: the model, its parameters and memory, and the adapter fit when there is an adapter. */
export function formatSummary(summary: ModelSummary, fit?: FitReport, adapter?: AdapterSummary | null, noAdapterReason?: string): string {
  const s = summary;
  const p = s.params;
  const lines = [
    `${s.name}: ${s.architecture} (${s.modelType}), ${s.dtype} weights`,
    `  layers            ${s.numLayers}`,
    `  hidden size       ${s.hiddenSize}`,
    `  attention heads   ${s.numHeads} query / ${s.numKvHeads} key-value, head_dim ${s.headDim}`,
    `  intermediate size ${s.intermediateSize}`,
    `  vocabulary        ${s.vocabSize}`,
    `  embeddings        ${s.tiedEmbeddings ? 'tied (lm_head shares embed_tokens)' : 'untied (separate lm_head)'}`,
    `  rope              ${formatRope(s.rope)}; max positions ${s.maxPositionEmbeddings}`,
    'parameters',
    `  total             ${countWithShort(p.total)}`,
    `  embeddings        ${countWithShort(p.embeddings)}`,
    `  lm_head           ${p.lmHead ? countWithShort(p.lmHead) : '0 (tied)'}`,
    `  per layer         ${countWithShort(p.perLayer)}`,
    `  all layers        ${countWithShort(p.allLayers)} (${((100 * p.allLayers) / p.total).toFixed(1)}% of the model)`,
    `  final norm        ${countWithShort(p.finalNorm)}`,
    'weight memory',
    `${`  stored as ${s.dtype}`.padEnd(20)}${formatBytes(s.weightBytes.stored)}`,
    `  on GPU as f16     ${formatBytes(s.weightBytes.f16)}`,
    `  on GPU as f32     ${formatBytes(s.weightBytes.f32)}`,
    `tensors             ${s.tensorCount} used${s.extraTensors.length ? `; ignored: ${s.extraTensors.slice(0, 5).join(', ')}${s.extraTensors.length > 5 ? ` and ${s.extraTensors.length - 5} more` : ''}` : ''}`,
    'files',
    ...s.files.map((f) => `  ${f.name.padEnd(34)} ${formatBytes(f.bytes)}`),
  ];
  if (adapter) {
    lines.push(
      'WebGPU adapter',
      `  ${adapter.name}${adapter.isSoftware ? ' (software)' : ''}`,
      `  shader-f16 ${adapter.shaderF16 ? 'yes' : 'no'}; maxBufferSize ${formatBytes(adapter.maxBufferSize)}; maxStorageBufferBindingSize ${formatBytes(adapter.maxStorageBufferBindingSize)}`,
    );
  } else if (adapter === null) {
    lines.push('WebGPU adapter', `  none${noAdapterReason ? `: ${noAdapterReason}` : ' available'} (the summary above needs no GPU)`);
  }
  if (fit) {
    lines.push(
      `fit (all resident)  ${fit.fits ? 'yes' : 'no'}: needs ${formatBytes(fit.neededBytes)} of ${fit.weightPrecision} weights, adapter allows ${formatBytes(fit.availableBytes)}; largest tensor ${fit.largestTensor.name} ${formatBytes(fit.largestTensor.bytes)}`,
      `  rule: ${fit.rule}`,
      ...fit.reasons.map((r) => `  - ${r}`),
    );
  }
  return lines.join('\n');
}
