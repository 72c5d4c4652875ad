// The width plan: how many key/value heads (each with its query heads) and intermediate channels every layer loses,
// and which ones (the lowest-scoring units of that layer). Uniform widths only: Hugging Face's config has one
// num_key_value_heads / num_attention_heads / intermediate_size for all layers, so a checkpoint that
// `from_pretrained` loads unchanged must have the same width in every layer — which means uniform mode prunes every
// layer. LLM-Pruner's exclusion of the first and last layers is only possible with per-layer widths (its non-uniform
// mode, not loadable by transformers), which is not built yet.
//
// The target is a fraction of ALL parameters (embeddings and lm_head included), as LLM-Pruner reports "20%
// pruned" for LLaMA-7B (6.74B → 5.39B), a parameter count to end at (that fraction, said the other way), or a
// number of heads / channels per layer.

import { GradPruneError } from '../../errors';
import { normalizeConfig, type ModelConfig } from '../../model/config';
import type { WeightDType } from '../../model/dtype';
import { modelCost, type ModelCost } from '../plan';
import { queryGroupSize } from './groups';
import type { LayerUnitScores } from './importance';

export type WidthTarget = { ratio: number } | { params: number } | { heads?: number; channels?: number };

export interface WidthLayerPlan {
  /** Kept key/value heads and channels, ascending (original indices). */
  keptKvHeads: number[];
  keptChannels: number[];
}

/** A layer's widths: query heads, key/value heads, intermediate channels. */
export interface LayerWidths {
  heads: number;
  kvHeads: number;
  intermediate: number;
}

export interface WidthPlan {
  mode: 'uniform';
  numLayers: number;
  /** Key/value heads (each with H/KV query heads) and intermediate channels removed in every layer. */
  removedKvHeads: number;
  removedChannels: number;
  /** The asked ratio of all parameters, when the target was one (or a parameter count, said as a ratio). */
  targetRatio: number | null;
  layers: WidthLayerPlan[];
  /** config.json of the pruned model (only the widths differ, and head_dim where it must be explicit). */
  config: Record<string, unknown>;
  /** config.json gained `head_dim`, which hidden_size / num_attention_heads no longer gives. */
  headDimStated: boolean;
  widthsBefore: LayerWidths;
  widthsAfter: LayerWidths;
  before: ModelCost;
  after: ModelCost;
}

const bad = (message: string, subject: string, hint?: string) => new GradPruneError('input', message, { subject, hint });

/** Parameters one attention unit (a kv head with its query heads) and one MLP channel hold in a layer, biases included. */
export function unitParams(c: ModelConfig): { head: number; channel: number } {
  const g = queryGroupSize(c);
  const HD = c.headDim;
  const C = c.hiddenSize;
  const head = (2 * g + 2) * HD * C + (c.bias.q_proj ? g * HD : 0) + (c.bias.k_proj ? HD : 0) + (c.bias.v_proj ? HD : 0);
  const channel = 3 * C + (c.bias.gate_proj ? 1 : 0) + (c.bias.up_proj ? 1 : 0);
  return { head, channel };
}

/** The per-layer counts for a target, checked against what the model has (every layer keeps ≥ 1 kv head and ≥ 1 channel). */
export function resolveWidthCounts(c: ModelConfig, target: WidthTarget): { heads: number; channels: number } {
  const maxHeads = c.numKvHeads - 1;
  const maxChannels = c.intermediateSize - 1;
  const headsText = `${c.numKvHeads} key/value head${c.numKvHeads === 1 ? '' : 's'} per layer (each shared by ${queryGroupSize(c)} query heads)`;
  if ('params' in target) return resolveWidthCounts(c, { ratio: ratioForParams(c, target.params) });
  if (!('ratio' in target)) {
    const heads = target.heads ?? 0;
    const channels = target.channels ?? 0;
    if (!Number.isInteger(heads) || heads < 0 || heads > maxHeads) {
      throw bad(`Cannot remove ${heads} key/value head${heads === 1 ? '' : 's'}: the model has ${headsText}, and every layer keeps at least one.`, 'heads', `Give --heads between 0 and ${maxHeads}.`);
    }
    if (!Number.isInteger(channels) || channels < 0 || channels > maxChannels) {
      throw bad(`Cannot remove ${channels} intermediate channels: the model has ${c.intermediateSize} per layer, and every layer keeps at least one.`, 'channels', `Give --channels between 0 and ${maxChannels}.`);
    }
    if (heads + channels === 0) throw bad('Nothing to remove: give --heads N and/or --channels N greater than 0, or --ratio R.', 'heads');
    return { heads, channels };
  }
  const { ratio } = target;
  if (!(ratio > 0 && ratio < 1)) throw bad(`The ratio ${ratio} must be between 0 and 1 (exclusive): the fraction of all parameters to remove.`, 'ratio');
  const total = modelCost(c, c.numLayers, 'F32', 0).params;
  const perLayer = (ratio * total) / c.numLayers;
  const unit = unitParams(c);
  // Heads at the same per-layer fraction as the layer's prunable weights lose (rounded, never all of them);
  // the channels take the rest of the budget, so the total lands as near the target as channels allow.
  const share = perLayer / (c.numKvHeads * unit.head + c.intermediateSize * unit.channel);
  let heads = Math.min(maxHeads, Math.round(share * c.numKvHeads));
  // Rounding up must not overshoot the budget on heads alone (channels cannot be given back).
  while (heads > 0 && heads * unit.head > perLayer) heads--;
  const channels = Math.min(maxChannels, Math.max(0, Math.round((perLayer - heads * unit.head) / unit.channel)));
  const most = c.numLayers * (maxHeads * unit.head + maxChannels * unit.channel);
  if (ratio * total > most) {
    throw bad(
      `A ratio of ${ratio} cannot be reached by width pruning: removing all but one key/value head and one channel in every layer removes ${(100 * most / total).toFixed(1)}% of the parameters (embeddings stay).`,
      'ratio',
      `Give --ratio below ${(most / total).toFixed(3)}.`,
    );
  }
  if (heads + channels === 0) throw bad(`A ratio of ${ratio} removes less than one channel per layer.`, 'ratio', 'Give a larger --ratio.');
  return { heads, channels };
}

/** "5.39B", "900M", "750k" or a plain count, as a number of parameters. */
export function parseParamCount(text: string, subject = 'target-params'): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kKmMbB]?)\s*$/.exec(text);
  if (!m) throw bad(`"${text}" is not a parameter count.`, subject, 'Give a count such as 5.39B, 900M, 750k or 1234567.');
  const scale = { '': 1, k: 1e3, m: 1e6, b: 1e9 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'b'];
  return Math.round(Number(m[1]) * scale);
}

/** The fraction of all parameters to remove so that `params` remain. */
function ratioForParams(c: ModelConfig, params: number): number {
  const total = modelCost(c, c.numLayers, 'F32', 0).params;
  if (!(params > 0 && params < total)) {
    throw bad(
      `A target of ${params.toLocaleString('en-US')} parameters is not below the model's ${total.toLocaleString('en-US')} (embeddings and lm_head included) and above 0.`,
      'target-params',
      `Give --target-params below ${total.toLocaleString('en-US')}, e.g. ${Math.round(0.8 * total).toLocaleString('en-US')} for 20% fewer.`,
    );
  }
  return 1 - params / total;
}

/** config.json with the new widths; `head_dim` written where hidden_size / num_attention_heads would no longer give it. */
export function widthPrunedConfig(c: ModelConfig, heads: number, channels: number): Record<string, unknown> {
  const kv = c.numKvHeads - heads;
  const numHeads = kv * queryGroupSize(c);
  const needsHeadDim = c.raw.head_dim == null && c.hiddenSize / numHeads !== c.headDim;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c.raw)) {
    if (k === 'num_attention_heads') {
      out[k] = numHeads;
      if (needsHeadDim && !('head_dim' in c.raw)) out.head_dim = c.headDim;
    } else if (k === 'head_dim' && needsHeadDim) out[k] = c.headDim; // "head_dim": null
    else if (k === 'num_key_value_heads') out[k] = kv;
    else if (k === 'intermediate_size') out[k] = c.intermediateSize - channels;
    else out[k] = v;
  }
  // A config without num_key_value_heads meant one per query head (multi-head attention); say it now that it differs.
  if (!('num_key_value_heads' in out)) out.num_key_value_heads = kv;
  return out;
}

/** The `count` lowest-scoring indices removed (ties: the lower index first); the kept indices ascending. */
function keepHighest(scores: Float64Array, count: number): number[] {
  const order = Array.from(scores.keys()).sort((a, b) => scores[a] - scores[b] || a - b);
  const removed = new Set(order.slice(0, count));
  return Array.from(scores.keys()).filter((i) => !removed.has(i));
}

export function makeWidthPlan(c: ModelConfig, scores: readonly LayerUnitScores[], target: WidthTarget, dtype: WeightDType = 'F32'): WidthPlan {
  if (scores.length !== c.numLayers) throw bad(`Scores for ${scores.length} layers, but the model has ${c.numLayers}.`, 'scores');
  // A parameter count is that fraction of all parameters, said the other way: resolved once, and reported as a ratio.
  const asked = 'params' in target ? { ratio: ratioForParams(c, target.params) } : target;
  const { heads, channels } = resolveWidthCounts(c, asked);
  const layers = scores.map((s) => ({ keptKvHeads: keepHighest(s.attention, heads), keptChannels: keepHighest(s.mlp, channels) }));
  const config = widthPrunedConfig(c, heads, channels);
  const pruned = normalizeConfig(config);
  const widths = (x: ModelConfig): LayerWidths => ({ heads: x.numHeads, kvHeads: x.numKvHeads, intermediate: x.intermediateSize });
  return {
    mode: 'uniform',
    numLayers: c.numLayers,
    removedKvHeads: heads,
    removedChannels: channels,
    targetRatio: 'ratio' in asked ? asked.ratio : null,
    layers,
    config,
    headDimStated: c.raw.head_dim == null && config.head_dim != null,
    widthsBefore: widths(c),
    widthsAfter: widths(pruned),
    before: modelCost(c, c.numLayers, dtype, 512),
    after: modelCost(pruned, c.numLayers, dtype, 512),
  };
}
