// GradPruner's pruning plan (arXiv 2601.19503): from per-layer importance scores, which decoder layers are
// kept, which are merged into a kept layer, which are dropped, and what the model costs before and after.
//
// Rules (fixtures/README.md, "pruned_prune{N}_merge{M}"):
// - prune the N lowest-scoring layers; layer 0 is never pruned (and the last layer not either with protectLast);
// - of the pruned layers, merge the M highest-scoring ones, each into the nearest LOWER kept layer (its receiver);
//   the others are dropped outright; kept layers are renumbered 0..n-1.
// Ties are broken deterministically: among equal scores the higher layer index is pruned first (deeper layers
// are the usual candidates), and among equal pruned scores the lower layer index is merged first.

import { GradPruneError } from '../errors';
import { LINEAR_MODULES, linearShape, type ModelConfig } from '../model/config';
import { dtypeBytes, type WeightDType } from '../model/dtype';

export const DEFAULT_KEEP_FRACTION = 0.2;
export const DEFAULT_MAX_MERGED = 3;

/** Whether a plan ranked this way may merge: merging needs IGIA's F, which only IGIA's rankings ('paper', 'code') come with. */
export const mergesAllowed = (rankBy: string | undefined): boolean => rankBy === undefined || rankBy === 'paper' || rankBy === 'code';

export interface PlanOptions {
  /** How many layers to prune; exactly one of prune, pruneRatio, targetParams. */
  prune?: number;
  /** Fraction (0..1) of the decoder layers' parameters to remove; N = round(ratio · layers). */
  pruneRatio?: number;
  /** The largest parameter count the pruned model may have; N is the smallest that meets it. */
  targetParams?: number;
  /** How many pruned layers to merge (default min(3, N)). */
  merge?: number;
  /** Never prune the last layer. */
  protectLast?: boolean;
  /** Fraction of a merged layer's elements kept by importance (default 0.2 = 80% sparsity). */
  keepFraction?: number;
  /** Dtype used for the weight-memory figures (default: the config's declared dtype, else F32). */
  dtype?: WeightDType;
  /** Context length at which attention FLOPs/token are counted (default 512). */
  contextLength?: number;
}

export type LayerFate = { kind: 'kept'; newIndex: number } | { kind: 'merged'; into: number } | { kind: 'dropped' };

export interface ModelCost {
  layers: number;
  /** All parameters: embeddings, decoder layers, final norm, lm_head (if untied). */
  params: number;
  /** Parameters in decoder layers only. */
  decoderParams: number;
  /** Bytes of weights in the plan's dtype. */
  weightBytes: number;
  /** Forward FLOPs per token: 2 × matmul weights (layers + lm_head) + attention at `contextLength`. */
  flopsPerToken: number;
}

export interface PrunePlan {
  numLayers: number;
  scores: number[];
  /** Ascending layer indices. */
  pruned: number[];
  merged: number[];
  dropped: number[];
  kept: number[];
  /** merged layer → receiver (original index). */
  receiver: Record<number, number>;
  fates: LayerFate[];
  /** Original index → new index, null for pruned layers. */
  newIndex: (number | null)[];
  keepFraction: number;
  protectLast: boolean;
  dtype: WeightDType;
  contextLength: number;
  before: ModelCost;
  after: ModelCost;
}

/** Parameters of one decoder layer: the seven linear weights, their biases, two norms (and Qwen3's q/k norms). */
export function layerParams(c: ModelConfig): number {
  let n = 2 * c.hiddenSize;
  for (const m of LINEAR_MODULES) {
    const [out, inp] = linearShape(c, m);
    n += out * inp + (c.bias[m] ? out : 0);
  }
  if (c.qkNorm) n += 2 * c.headDim;
  return n;
}

function linearParams(c: ModelConfig): number {
  return LINEAR_MODULES.reduce((s, m) => s + linearShape(c, m)[0] * linearShape(c, m)[1], 0);
}

export function modelCost(c: ModelConfig, layers: number, dtype: WeightDType, contextLength: number): ModelCost {
  const embed = c.vocabSize * c.hiddenSize;
  const decoderParams = layers * layerParams(c);
  const params = embed + (c.tiedEmbeddings ? 0 : embed) + c.hiddenSize + decoderParams;
  const attention = 4 * c.numHeads * c.headDim * contextLength;
  const flopsPerToken = 2 * (layers * linearParams(c) + embed) + layers * attention;
  return { layers, params, decoderParams, weightBytes: params * dtypeBytes(dtype), flopsPerToken };
}

const bad = (msg: string, subject: string, hint?: string) => new GradPruneError('input', msg, { subject, hint });

/** The candidates for pruning, ordered by pruning priority (lowest score first; ties: higher layer first). */
function pruneOrder(scores: number[], protectLast: boolean): number[] {
  const last = scores.length - 1;
  const candidates = scores.map((_, i) => i).filter((i) => i !== 0 && !(protectLast && i === last));
  return candidates.sort((a, b) => scores[a] - scores[b] || b - a);
}

/** N from whichever of prune / pruneRatio / targetParams was given. */
export function resolvePruneCount(scores: number[], config: ModelConfig, opts: PlanOptions): number {
  const given = [opts.prune, opts.pruneRatio, opts.targetParams].filter((v) => v !== undefined).length;
  if (given !== 1) throw bad('Give exactly one of: layers to prune, a ratio of parameters, or a target parameter count.', 'prune');
  const maxN = pruneOrder(scores, opts.protectLast ?? false).length;
  const L = scores.length;
  if (opts.prune !== undefined) return opts.prune;
  if (opts.pruneRatio !== undefined) {
    const r = opts.pruneRatio;
    if (!(r >= 0 && r < 1)) throw bad(`The prune ratio ${r} must be in [0, 1).`, 'pruneRatio');
    // Decoder layers are all the same size, so a fraction of their parameters is the same fraction of layers.
    return Math.round(r * L);
  }
  const target = opts.targetParams!;
  const dtype = opts.dtype ?? 'F32';
  for (let n = 0; n <= maxN; n++) if (modelCost(config, L - n, dtype, 0).params <= target) return n;
  const smallest = modelCost(config, L - maxN, dtype, 0).params;
  throw bad(`No plan reaches ${target} parameters: pruning every allowed layer leaves ${smallest}.`, 'targetParams', 'Choose a larger target.');
}

export function makePlan(scores: readonly number[], config: ModelConfig, opts: PlanOptions): PrunePlan {
  const L = config.numLayers;
  if (scores.length !== L) throw bad(`There are ${scores.length} layer scores for a model of ${L} layers.`, 'scores');
  const bi = scores.findIndex((s) => !Number.isFinite(s));
  if (bi >= 0) throw new GradPruneError('numeric', `The score of layer ${bi} is ${scores[bi]}.`, { subject: `layer ${bi}`, hint: 'Run the scoring again; check the loss for NaN.' });
  const s = [...scores];
  const protectLast = opts.protectLast ?? false;
  const keepFraction = opts.keepFraction ?? DEFAULT_KEEP_FRACTION;
  if (!(keepFraction > 0 && keepFraction <= 1)) throw bad(`The keep fraction ${keepFraction} must be in (0, 1].`, 'keepFraction');
  const dtype = opts.dtype ?? config.declaredDType ?? 'F32';
  const contextLength = opts.contextLength ?? 512;

  const order = pruneOrder(s, protectLast);
  const n = resolvePruneCount(s, config, opts);
  if (!Number.isInteger(n) || n < 0) throw bad(`The number of layers to prune (${n}) must be a whole number ≥ 0.`, 'prune');
  if (n > order.length) {
    throw bad(
      `Cannot prune ${n} of ${L} layers: layer 0${protectLast ? ' and the last layer are' : ' is'} always kept, so at most ${order.length} can go.`,
      'prune',
      'Prune fewer layers.',
    );
  }
  const m = opts.merge ?? Math.min(DEFAULT_MAX_MERGED, n);
  if (!Number.isInteger(m) || m < 0 || m > n) throw bad(`Cannot merge ${m} layers when ${n} are pruned: merge between 0 and ${n}.`, 'merge');

  const prunedSet = new Set(order.slice(0, n));
  const byImportance = [...prunedSet].sort((a, b) => s[b] - s[a] || a - b);
  const mergedSet = new Set(byImportance.slice(0, m));
  const asc = (xs: Iterable<number>) => [...xs].sort((a, b) => a - b);
  const kept = s.map((_, i) => i).filter((i) => !prunedSet.has(i));
  const newIndex = s.map((_, i) => (prunedSet.has(i) ? null : kept.indexOf(i)));
  const receiver: Record<number, number> = {};
  for (const p of asc(mergedSet)) receiver[p] = Math.max(...kept.filter((k) => k < p));
  const fates: LayerFate[] = s.map((_, i) =>
    !prunedSet.has(i) ? { kind: 'kept', newIndex: newIndex[i]! } : mergedSet.has(i) ? { kind: 'merged', into: receiver[i] } : { kind: 'dropped' },
  );
  return {
    numLayers: L,
    scores: s,
    pruned: asc(prunedSet),
    merged: asc(mergedSet),
    dropped: asc([...prunedSet].filter((i) => !mergedSet.has(i))),
    kept,
    receiver,
    fates,
    newIndex,
    keepFraction,
    protectLast,
    dtype,
    contextLength,
    before: modelCost(config, L, dtype, contextLength),
    after: modelCost(config, kept.length, dtype, contextLength),
  };
}

/** For each receiver, the layers merged into it (ascending). */
export function mergesByReceiver(plan: PrunePlan): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const p of plan.merged) {
    const r = plan.receiver[p];
    out.set(r, [...(out.get(r) ?? []), p]);
  }
  return out;
}
