// Which layers to cut, compared on the person's own data: one scoring run (LoRA steps, IGIA, and the hidden-state
// statistics Block Influence and angular distance ask for) feeds every layer-importance method (./importance); each
// method's plan removes N layers (dropped: no merge, so the rows differ only in which layers go); every plan is
// evaluated on the same seeded held-out split — loss, perplexity, multiple-choice accuracy — and, with recovery steps,
// again after a fresh LoRA of S steps on the same training split. The rankings' agreement: Kendall τ-b between the
// layer scores and the overlap (Jaccard) of the removed sets. With `width`, one more row: LLM-Pruner's width pruning
// (./width) at the same parameter budget as the depth plans, on the same split; every row's forward time per token is
// measured on this GPU beside its FLOPs per token (width pruning saves fewer FLOPs per parameter than depth pruning).

import type { TokenizedExample } from '../data/types';
import { parameterCount } from '../eval/before-after';
import { heldOutLoss, type HeldOutLoss } from '../eval/loss';
import { scoreMultipleChoice } from '../eval/multiple-choice';
import { recoverySplit, runRecovery, type Accuracy } from '../eval/recovery';
import { gpuScoringModel, loadEvalGpuModel } from '../eval/engines';
import { evalBatches } from '../data/batch';
import type { Gpu } from '../gpu/device';
import type { ModelConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import type { TextTokenizer } from '../model/tokenizer';
import type { WeightPrecision } from '../nn/precision';
import type { ScoringSettings } from '../nn/run-settings';
import { hiddenStatePairsFor, importanceMethod, type ImportanceCost, type ImportanceMethodId, type LayerBlock } from './importance';
import { runScoring, type ScoringHooks } from './pipeline';
import { layerParams, makePlan, modelCost } from './plan';
import { measureForward } from '../eval/cost';
import type { WeightDType } from '../model/dtype';
import type { TaylorImportanceKind } from './importance/taylor';
import { planWidthPrune, widthPrunedView } from './width';
import { GRADIENT_IMPORTANCES, type GroupReduction, type ImportanceKind } from './width/importance';
import { taylorLineScorer } from './width/taylor';
import { prunedView } from './pruned-view';
import { kendallTau } from './scores';

export interface CompareOptions {
  methods: readonly ImportanceMethodId[];
  /** N: layers every plan removes. */
  prune: number;
  /** Recovery LoRA steps per plan after the first evaluation (0: none). */
  recoverSteps: number;
  /** The held-out share or count and the split's seed (recoverySplit's): the same rows for every row of the table. */
  heldOut: number;
  seed: number;
  /** Scoring settings (the recovery uses the same batch, length, rank and learning rate). */
  settings: Partial<ScoringSettings>;
  weights: WeightPrecision;
  /** Add LLM-Pruner's width pruning at the depth plans' parameter budget, ranked by this importance. */
  width?: { importance: ImportanceKind; reduction?: GroupReduction };
}

export interface CompareData {
  examples: readonly TokenizedExample[];
  padTokenId: number;
  tokenizer: TextTokenizer;
}

/** One model measured on the held-out split, and its forward time per token on this GPU. */
export interface Evaluation {
  loss: number | null;
  perplexity: number | null;
  accuracy: Accuracy | null;
  /** Median of a few timed forward passes (one run's ratios compare; absolute numbers drift). */
  msPerToken?: number;
}

export interface MethodRow {
  method: ImportanceMethodId;
  title: string;
  /** Higher = more important (keep). */
  layerScores: number[];
  /** The layers the plan removes (original indices, ascending). */
  pruned: number[];
  /** Angular distance: the block it removes. */
  block?: LayerBlock;
  params: number;
  evaluation: Evaluation;
  /** After recoverSteps of LoRA on the pruned model (absent without recovery). */
  recovered?: Evaluation;
  /** The method's own cost (time, memory beyond the model). */
  cost: ImportanceCost;
  /** Seconds of the method's own work (cost.seconds). */
  seconds: number;
  flopsPerToken: number;
}

/** LLM-Pruner's width pruning at the depth plans' budget: every layer narrower instead of fewer layers. */
export interface WidthRow {
  importance: ImportanceKind;
  /** The fraction of all parameters it was asked to remove (the depth plans'), and its widths after. */
  targetRatio: number;
  widths: { heads: number; kvHeads: number; intermediate: number };
  /** What each layer keeps (the width plan's). */
  kept: { keptKvHeads: number[]; keptChannels: number[] }[];
  params: number;
  flopsPerToken: number;
  evaluation: Evaluation;
  recovered?: Evaluation;
  seconds: number;
}

export interface Comparison {
  dense: { params: number; flopsPerToken: number; evaluation: Evaluation };
  methods: MethodRow[];
  width?: WidthRow;
  /** agreement.kendall[i][j]: τ-b between methods i and j's layer scores; overlap[i][j]: |A∩B| / |A∪B| of their removed layers. */
  agreement: { methods: ImportanceMethodId[]; kendall: number[][]; overlap: number[][] };
  scoringSeconds: number;
  trainExamples: number;
  heldOutExamples: number;
}

export interface CompareHooks {
  scoring?: Omit<ScoringHooks, 'hiddenStates'>;
  /** A line per phase for people ("Block Influence: evaluating the 5-layer model"). */
  onPhase?: (line: string) => void;
}

type Model = { config: ModelConfig; store: TensorStore };

const asEvaluation = (loss: HeldOutLoss | null, accuracy: Accuracy | null): Evaluation => ({ loss: loss?.loss ?? null, perplexity: loss?.perplexity ?? null, accuracy });

/** The held-out loss (and multiple-choice accuracy) of one model, on the GPU in the comparison's precision; `timed`: its forward time too. */
export async function evaluate(gpu: Gpu, model: Model, heldOut: readonly TokenizedExample[], data: Pick<CompareData, 'padTokenId' | 'tokenizer'>, opts: Pick<CompareOptions, 'settings' | 'weights'>, timed = true): Promise<Evaluation> {
  const batchSize = opts.settings.batchSize ?? 4;
  const seqLen = Math.max(...heldOut.map((e) => e.inputIds.length), 2);
  const { model: engine } = await loadEvalGpuModel(gpu, model.config, model.store, { batchSize, seqLen, weights: opts.weights, maxGpuMemory: opts.settings.maxGpuMemory ?? null });
  try {
    const scoring = gpuScoringModel(engine);
    const loss = heldOut.length ? await heldOutLoss(scoring, evalBatches(heldOut, { batchSize, padTokenId: data.padTokenId })) : null;
    const items = heldOut.flatMap((e) => (e.mc ? [e.mc] : []));
    const mc = items.length ? await scoreMultipleChoice(scoring, data.tokenizer, items, { batchSize }) : null;
    const msPerToken = timed ? (await measureForward(engine, { repeats: 3, warmup: 1 })).msPerToken : undefined;
    gpu.throwIfFailed();
    return { ...asEvaluation(loss, mc && { acc: mc.acc, accNorm: mc.accNorm, items: mc.items }), ...(msPerToken === undefined ? {} : { msPerToken }) };
  } finally {
    engine.destroy();
  }
}

/** FLOPs per token are counted at this context length (plan.ts's default). */
const CONTEXT = 512;

/** A fresh LoRA of opts.recoverSteps steps on the training split, then the held-out split again. */
async function recover(gpu: Gpu, model: Model, data: CompareData, opts: CompareOptions): Promise<Evaluation> {
  const s = opts.settings;
  const recovery = await runRecovery(gpu, model, { examples: data.examples, padTokenId: data.padTokenId, tokenizer: data.tokenizer }, {
    steps: opts.recoverSteps,
    heldOut: opts.heldOut,
    seed: opts.seed,
    batchSize: s.batchSize,
    seqLen: s.seqLen,
    rank: s.rank,
    alpha: s.alpha,
    lr: s.lr,
    weights: opts.weights === 'auto' ? undefined : opts.weights,
    maxGpuMemory: s.maxGpuMemory ?? null,
  });
  return asEvaluation(recovery.after, recovery.accuracyAfter);
}

/** LLM-Pruner's uniform width pruning to `ratio` of all parameters, measured as the depth rows are. */
async function widthRow(
  gpu: Gpu,
  dense: Model & { dtype: WeightDType; files: ReadonlyMap<string, Blob> },
  data: CompareData,
  train: readonly TokenizedExample[],
  heldOut: readonly TokenizedExample[],
  opts: CompareOptions,
  width: NonNullable<CompareOptions['width']>,
  ratio: number,
  say: (line: string) => void,
): Promise<WidthRow> {
  say(`LLM-Pruner width pruning (${width.importance}): ${(100 * ratio).toFixed(1)}% of the parameters, as the depth plans remove`);
  const started = performance.now();
  const gradientScorer = GRADIENT_IMPORTANCES.has(width.importance)
    ? (await taylorLineScorer(gpu, dense, { kind: 'examples', examples: train, padTokenId: data.padTokenId }, width.importance as TaylorImportanceKind, { seed: opts.seed })).scorer
    : undefined;
  const { plan } = await planWidthPrune(dense, { ratio }, { importance: width.importance, reduction: width.reduction, seed: opts.seed, gradientScorer });
  const seconds = (performance.now() - started) / 1000;
  const view = widthPrunedView(dense, plan);
  say(`LLM-Pruner width pruning: evaluating (heads ${plan.widthsAfter.heads}, key/value heads ${plan.widthsAfter.kvHeads}, intermediate ${plan.widthsAfter.intermediate})`);
  const row: WidthRow = {
    importance: width.importance,
    targetRatio: ratio,
    widths: { heads: plan.widthsAfter.heads, kvHeads: plan.widthsAfter.kvHeads, intermediate: plan.widthsAfter.intermediate },
    kept: plan.layers.map((l) => ({ keptKvHeads: [...l.keptKvHeads], keptChannels: [...l.keptChannels] })),
    params: parameterCount(view.config),
    flopsPerToken: plan.after.flopsPerToken,
    evaluation: await evaluate(gpu, view, heldOut, data, opts),
    seconds,
  };
  if (opts.recoverSteps > 0) {
    say(`LLM-Pruner width pruning: ${opts.recoverSteps} recovery steps`);
    row.recovered = await recover(gpu, view, data, opts);
  }
  return row;
}

const jaccard = (a: readonly number[], b: readonly number[]): number => {
  const union = new Set([...a, ...b]);
  return union.size === 0 ? 1 : a.filter((x) => b.includes(x)).length / union.size;
};

/** Score once, rank by every method, evaluate every plan on the same held-out rows (and after recovery). */
export async function compareMethods(gpu: Gpu, dense: Model & { dtype: WeightDType; files: ReadonlyMap<string, Blob> }, data: CompareData, opts: CompareOptions, hooks: CompareHooks = {}): Promise<Comparison> {
  const methods = opts.methods.map(importanceMethod);
  const { config } = dense;
  const { train, heldOut } = recoverySplit(data.examples, { heldOut: opts.heldOut, seed: opts.seed });
  const say = hooks.onPhase ?? (() => undefined);

  say(`Scoring run: ${opts.settings.steps ?? 'default'} LoRA steps on ${train.length} training examples`);
  const started = performance.now();
  const scoring = await runScoring(gpu, dense, { kind: 'examples', examples: train, padTokenId: data.padTokenId }, opts.settings, {
    ...hooks.scoring,
    hiddenStates: hiddenStatePairsFor(methods, config.numLayers, opts.prune),
  });
  const scoringSeconds = (performance.now() - started) / 1000;

  say(`Dense model: evaluating on ${heldOut.length} held-out examples`);
  const denseRow = { params: parameterCount(config), flopsPerToken: modelCost(config, config.numLayers, 'F32', CONTEXT).flopsPerToken, evaluation: await evaluate(gpu, dense, heldOut, data, opts) };
  const rows: MethodRow[] = [];
  for (const m of methods) {
    say(`${m.title}: ranking the layers`);
    const importance = await m.compute({ model: dense, prune: opts.prune, scoring, gpu, data: { kind: 'examples', examples: train, padTokenId: data.padTokenId }, settings: opts.settings });
    const plan = makePlan(importance.layerScores, config, { prune: opts.prune, merge: 0 });
    const view = prunedView(dense, plan);
    say(`${m.title}: evaluating the ${plan.kept.length}-layer model (layers ${plan.pruned.join(', ')} removed)`);
    const row: MethodRow = {
      method: m.id,
      title: m.title,
      layerScores: importance.layerScores,
      pruned: plan.pruned,
      ...(importance.block ? { block: importance.block } : {}),
      params: parameterCount(view.config),
      evaluation: await evaluate(gpu, view, heldOut, data, opts),
      cost: importance.cost,
      seconds: importance.cost.seconds,
      flopsPerToken: modelCost(view.config, view.config.numLayers, 'F32', CONTEXT).flopsPerToken,
    };
    if (opts.recoverSteps > 0) {
      say(`${m.title}: ${opts.recoverSteps} recovery steps`);
      row.recovered = await recover(gpu, view, data, opts);
    }
    rows.push(row);
  }
  const width = opts.width && (await widthRow(gpu, dense, data, train, heldOut, opts, opts.width, 1 - (denseRow.params - opts.prune * layerParams(config)) / denseRow.params, say));
  const ids = rows.map((r) => r.method);
  return {
    dense: denseRow,
    methods: rows,
    ...(width ? { width } : {}),
    agreement: {
      methods: ids,
      kendall: rows.map((a) => rows.map((b) => kendallTau(a.layerScores, b.layerScores))),
      overlap: rows.map((a) => rows.map((b) => jaccard(a.pruned, b.pruned))),
    },
    scoringSeconds,
    trainExamples: train.length,
    heldOutExamples: heldOut.length,
  };
}
