// The studio's steps after the model, in the worker: dataset → scoring → prune → check → export. One Journey per
// loaded model; it keeps the engine state each later step needs (the dataset, the last scores and their IGIA
// state, the pruned checkpoint) and drops what a new earlier step makes stale.
// The pruned (and recovered) checkpoints are views over the dense files, read on demand (./lazy-checkpoint.ts);
// every GPU job gets its weights from one cache (./weights-cache.ts): each checkpoint uploaded once per device and
// precision, shared by Check, generation and Recover, all in the session's precision and GPU memory limit.

import { buildExamples, previewDataset, readDataset, splitTrainHeldOut, type Dataset, type TokenizedExample, type TokenizedSet } from '../data';
import { evalBatches } from '../data/batch';
import { GradPruneError, toErrorInfo } from '../errors';
import { comparisonRows, measureModel, type ModelMeasurement } from '../eval/before-after';
import { measureForward, type ForwardCost } from '../eval/cost';
import { gpuScoringModel, loadEvalGpuModel } from '../eval/engines';
import type { WeightsSource } from '../nn/model';
import { generateIds, stopIdsOf } from '../eval/generation';
import { Generator } from '../nn/generate';
import { heldOutLoss } from '../eval/loss';
import { scoreMultipleChoice } from '../eval/multiple-choice';
import { runRecovery, type RecoveryResult, type RecoverySettingsInput } from '../eval/recovery';
import { RECOVERY_FILE } from '../export/merge-adapter';
import { writePeftAdapter } from '../export/peft';
import type { PruneRunInfo } from '../export/recipe';
import { zipFolder } from '../export/zip';
import { DirectorySink, zipFileSink } from '../export/fs-access';
import { MemorySink, type CheckpointSink } from '../export/sink';
import { makePlan, type PrunePlan } from '../gradprune/plan';
import type { AdapterSummary, Gpu } from '../gpu/device';
import { runScoring, type ScoringResult, type ScoringSettings } from '../gradprune/pipeline';
import type { Checkpoint } from '../model/checkpoint';
import { defaultGpuBudget, estimateMemory, planResidency, type MemoryEstimate, type MemoryPlan } from '../nn/memory';
import { plannedWeightStorage, resolveWeightStorage, type ResolvedPrecision, type WeightStorage } from '../nn/precision';
import type { Residency } from '../nn/weights';
import { igiaMemory } from '../gradprune/igia';
import { mergeReceivers, plannedFiles, prunedCheckpoint, recoveredCheckpoint, withRun, writeCheckpointTo, type LazyCheckpoint } from './lazy-checkpoint';
import { recoveryCardSection, recoveryRecord } from './recovery-card';
import { WeightsCache, type WeightsLease } from './weights-cache';
import type {
  AdapterExport,
  DatasetInfo,
  DatasetOptions,
  EvaluateOptions,
  ExportTarget,
  GenerationRow,
  JobSettings,
  ModelEval,
  PlanChoice,
  RecoveredEvent,
  RecoverEvaluation,
  RecoverSettings,
  ScoreSnapshot,
  WorkerEvent,
} from './protocol';

type Post = (event: WorkerEvent) => void;

interface DatasetState {
  file: Blob;
  fileName: string;
  dataset: Dataset;
  set: TokenizedSet;
  train: TokenizedExample[];
  heldOut: TokenizedExample[];
  options: DatasetOptions;
  /** The training split re-tokenized for other row lengths (runs at a seqLen below the dataset's), kept for the next run. */
  trainBySeqLen: Map<number, TokenizedExample[]>;
}

interface PrunedState {
  choice: PlanChoice;
  plan: PrunePlan;
  /** What the model card and recipe say about the run (as runPrune wrote them), for adding the evaluation. */
  run: PruneRunInfo;
  /** The pruned model as a view over the dense files (merged receivers kept; everything else read on demand). */
  checkpoint: LazyCheckpoint;
  /** The last Check of this pruned model, written into the model card and recipe on export. */
  evaluation: PruneRunInfo['evaluation'] | null;
  /** The last recovery fine-tuning of this pruned model (a new prune drops it with the rest). */
  recovery: RecoveryState | null;
  /** The last Check's held-out numbers and how many held-out examples they cover (a recovery on the same examples reuses them). */
  checked: { examples: number; dense: ModelEval; pruned: ModelEval } | null;
}

interface RecoveryState {
  /** The trained adapters (host values) and their LoRA config. */
  result: RecoveryResult;
  /** The pruned model with the adapter merged in, as a view over the pruned one (merged as it is read). */
  recovered: LazyCheckpoint;
  /** What the page was told (the numbers the model card repeats). */
  event: RecoveredEvent;
}

/** Pause / resume / stop of the one training run (scoring or recovery) at a time. */
class RunControl {
  paused = false;
  stopping = false;
  private wake: (() => void) | null = null;

  /** Before each step: wait while paused; false once stop was asked. */
  async gate(): Promise<boolean> {
    while (this.paused && !this.stopping) await new Promise<void>((r) => (this.wake = r));
    return !this.stopping;
  }
  set(paused: boolean, stopping = this.stopping): void {
    this.paused = paused;
    this.stopping = stopping;
    this.wake?.();
    this.wake = null;
  }
}

const noDataset = () =>
  new GradPruneError('input', 'No dataset is loaded yet.', { subject: 'dataset', hint: 'Drop a dataset file in step 2 (or try the demo) first.' });
const noScores = () => new GradPruneError('input', 'There are no scores yet.', { subject: 'scores', hint: 'Run the scoring in step 3 first.' });
const noPruned = () => new GradPruneError('input', 'There is no pruned model yet.', { subject: 'prune', hint: 'Apply a plan in step 4 first.' });
const busy = () => new GradPruneError('input', 'A training run (scoring or recovery) is already going.', { subject: 'run', hint: 'Stop it first.' });

/** Where a separate PEFT adapter goes inside the exported folder. */
export const PEFT_FOLDER = 'adapter';

/** Batch size of the evaluation passes and of the timed forward passes (small: software GPUs are slow). */
const EVAL_BATCH = 4;
/** Timed forward passes per model (after one warm-up); the median counts. */
const TIMED_PASSES = 3;

/** The longest row of a split, in tokens (at least 2: a row needs a next token to predict); rows never need to be longer. */
const rowLength = (examples: readonly TokenizedExample[]): number => Math.max(2, examples.reduce((m, e) => Math.max(m, e.inputIds.length), 0));

const snapshot = (steps: number, layerScores: number[], moduleScores: number[][], layerScoresCode: number[]): ScoreSnapshot => ({
  steps,
  layerScores,
  moduleScores,
  layerScoresCode,
});

/** The session's job settings as a request gives them: 'auto' precision and the adapter's own limit by default. */
const jobOf = (given: Partial<JobSettings> | undefined): JobSettings => ({ weights: given?.weights ?? 'auto', maxGpuMemory: given?.maxGpuMemory ?? null });

type OnGpu = { storage: WeightStorage; residency: Residency };

/** One model's Check as a row of the before / after table. */
const measurementOf = (label: string, ckpt: Checkpoint, m: { eval: ModelEval; cost: ForwardCost; onGpu?: OnGpu }): ModelMeasurement => ({
  label,
  config: ckpt.config,
  dtype: ckpt.dtype,
  heldOut: { loss: m.eval.loss, perplexity: m.eval.perplexity, tokens: m.eval.tokens, rows: m.eval.rows },
  accuracy: m.eval.acc !== undefined ? { acc: m.eval.acc, accNorm: m.eval.accNorm ?? NaN, items: m.eval.items ?? 0 } : null,
  cost: m.cost,
  onGpu: m.onGpu ?? null,
});

/** A measured row's held-out numbers as the protocol's ModelEval (null when nothing was held out). */
const evalOf = (m: ModelMeasurement): ModelEval | null =>
  m.heldOut
    ? {
        loss: m.heldOut.loss,
        perplexity: m.heldOut.perplexity,
        tokens: m.heldOut.tokens,
        rows: m.heldOut.rows,
        ...(m.accuracy ? { acc: m.accuracy.acc, accNorm: m.accuracy.accNorm, items: m.accuracy.items } : {}),
      }
    : null;

/** The Check's numbers as the recipe and model card list them. */
function evaluationOf(dense: ModelEval, after: ModelEval, rows: string): NonNullable<PruneRunInfo['evaluation']> {
  return [
    { metric: `loss (${rows})`, before: dense.loss, after: after.loss },
    { metric: `perplexity (${rows})`, before: dense.perplexity, after: after.perplexity },
    ...(dense.acc !== undefined && after.acc !== undefined ? [{ metric: `acc (${after.items} questions)`, before: dense.acc, after: after.acc }] : []),
    ...(dense.accNorm !== undefined && after.accNorm !== undefined ? [{ metric: `acc_norm (${after.items} questions)`, before: dense.accNorm, after: after.accNorm }] : []),
  ];
}

/** The engine's settings for the page's choice; a one-step decay run gets no warmup (it would leave no step to decay over). */
function recoveryInput(s: RecoverSettings, trainExamples: number, job: JobSettings): RecoverySettingsInput {
  const steps = s.by === 'epochs' ? Math.max(1, Math.ceil((s.epochs * trainExamples) / s.batchSize)) : s.steps;
  return {
    ...(s.by === 'epochs' ? { epochs: s.epochs } : { steps: s.steps }),
    rank: s.rank,
    alpha: s.alpha,
    lr: s.lr,
    batchSize: s.batchSize,
    seqLen: s.seqLen,
    schedule: s.schedule,
    ...(steps === 1 && s.schedule !== 'constant' ? { warmupSteps: 0 } : {}),
    // The dataset's own split decides what is held out: the run trains on the training split only.
    heldOut: 0,
    weights: job.weights,
    maxGpuMemory: job.maxGpuMemory,
  };
}

export class Journey {
  private data: DatasetState | null = null;
  private scoring: ScoringResult | null = null;
  private pruned: PrunedState | null = null;
  private run: RunControl | null = null;

  constructor(
    private readonly ckpt: Checkpoint,
    private readonly gpu: () => Promise<Gpu>,
    private readonly post: Post,
    /** The weights on the GPU (the host's, shared across models it loads; it clears it on a new model). */
    readonly weights: WeightsCache = new WeightsCache(),
  ) {}

  /** Drop the pruned model (and its recovery) and their uploads: a new dataset, scoring or prune makes them stale. */
  private dropPruned(): void {
    this.pruned = null;
    this.weights.evict((c) => c !== this.ckpt);
  }

  /**
   * Cached weights of `ckpt` for the jobs of one step, in the session's precision and limit; `release()` when the
   * step's jobs are done (the weights stay cached for the next step).
   */
  private weightsSource(id: number, gpu: Gpu, ckpt: Checkpoint, label: string, job: JobSettings): { source: WeightsSource; release(): void } {
    const leases: WeightsLease[] = [];
    const source: WeightsSource = async (storage, plan) => {
      const lease = await this.weights.acquire(gpu, ckpt, storage, plan, {
        maxGpuMemory: job.maxGpuMemory,
        onProgress: (done, total) => this.post({ type: 'progress', requestId: id, stage: `Uploading the ${label} weights`, fraction: total ? done / total : undefined }),
      });
      leases.push(lease);
      return lease.weights;
    };
    return { source, release: () => leases.splice(0).forEach((l) => l.release()) };
  }

  async loadDataset(id: number, file: Blob, fileName: string, options: DatasetOptions): Promise<void> {
    this.post({ type: 'progress', requestId: id, stage: `Reading ${fileName}` });
    const dataset = await readDataset(file, fileName, { format: options.format, columns: options.columns, multipleChoiceSchema: options.multipleChoiceSchema });
    this.post({ type: 'progress', requestId: id, stage: `Tokenizing ${dataset.examples.length} examples` });
    const set = buildExamples(dataset, this.ckpt.tokenizer, { maxSeqLen: options.maxSeqLen });
    if (set.examples.length === 0) {
      throw new GradPruneError('dataset', `${fileName}: no example is left after tokenizing (${set.rejected.length} rows rejected).`, {
        subject: fileName,
        hint: 'Look at the rejected rows, or choose another format or a longer sequence length.',
      });
    }
    const { train, heldOut } = splitTrainHeldOut(set.examples, { heldOut: options.heldOut, seed: options.seed });
    // A new dataset makes scores, plans and the pruned model stale.
    this.data = { file, fileName, dataset, set, train, heldOut, options, trainBySeqLen: new Map() };
    this.scoring = null;
    this.dropPruned();
    const preview = previewDataset(set, this.ckpt.tokenizer, { rows: 5, bins: 20, rejected: 50 });
    const info: DatasetInfo = {
      fileName,
      bytes: file.size,
      format: dataset.format,
      multipleChoiceSchema: dataset.multipleChoiceSchema,
      detectedFrom: dataset.detectedFrom,
      columns: dataset.columns,
      mapping: dataset.mapping,
      totalRows: dataset.totalRows,
      examples: set.examples.length,
      train: train.length,
      heldOut: heldOut.length,
      heldOutChoiceItems: heldOut.filter((e) => e.mc).length,
      rejectedCount: set.rejected.length,
      rejected: set.rejected.slice(0, 50),
      preview,
      options,
    };
    this.post({ type: 'datasetLoaded', requestId: id, dataset: info });
  }

  async setFormat(id: number, options: DatasetOptions): Promise<void> {
    if (!this.data) throw noDataset();
    await this.loadDataset(id, this.data.file, this.data.fileName, options);
  }

  async score(id: number, settings: Partial<ScoringSettings>): Promise<void> {
    const data = this.data;
    if (!data) throw noDataset();
    if (this.run) throw busy();
    const seqLen = settings.seqLen ?? data.options.maxSeqLen;
    const train = this.trainSplitFor(data, seqLen);
    const gpu = await this.gpu();
    const control = new RunControl();
    this.run = control;
    this.scoring = null;
    this.dropPruned();
    // The dense weights from the cache: the Check after scoring runs on the same upload.
    const dense = this.weightsSource(id, gpu, this.ckpt, 'dense', jobOf(settings));
    this.post({ type: 'progress', requestId: id, stage: 'Uploading the weights' });
    try {
      // Rows never exceed the longest example: a shorter T saves memory and time.
      const result = await runScoring(
        gpu,
        this.ckpt,
        { kind: 'examples', examples: train, padTokenId: data.set.padTokenId },
        { ...settings, seqLen: Math.min(seqLen, rowLength(train)) },
        {
          onLoad: (done, total) => this.post({ type: 'progress', requestId: id, stage: 'Uploading the weights', fraction: total ? done / total : undefined }),
          progressIntervalMs: 200,
          beforeStep: () => control.gate(),
          weights: dense.source,
          onStep: (p) =>
            this.post({
              type: 'scoreStep',
              requestId: id,
              step: p.step,
              steps: p.steps,
              losses: p.losses,
              lr: p.lr,
              gradNorm: p.gradNorm,
              tokensPerSecond: p.tokensPerSecond,
              elapsedSeconds: p.elapsedSeconds,
              etaSeconds: p.etaSeconds,
              scores: snapshot(p.step + 1, p.layerScores, p.moduleScores, p.layerScoresCode),
            }),
        },
      );
      this.scoring = result;
      this.post({
        type: 'scored',
        requestId: id,
        scores: snapshot(result.steps, result.layerScores, result.moduleScores, result.layerScoresCode),
        kendall: result.kendall,
        losses: result.losses,
        stopped: result.steps < result.settings.steps,
        settings: { ...result.settings, seqLen },
        elapsedSeconds: result.elapsedSeconds,
        targetTokens: result.targetTokens,
      });
    } finally {
      dense.release();
      this.run = null;
    }
  }

  /** The training split tokenized for rows of seqLen tokens (the engine holds rows of that length). */
  private trainSplitFor(data: DatasetState, seqLen: number): TokenizedExample[] {
    if (seqLen === data.set.maxSeqLen) return data.train;
    let train = data.trainBySeqLen.get(seqLen);
    if (!train) {
      const set = buildExamples(data.dataset, this.ckpt.tokenizer, { maxSeqLen: seqLen });
      train = splitTrainHeldOut(set.examples, { heldOut: data.options.heldOut, seed: data.options.seed }).train;
      data.trainBySeqLen.set(seqLen, train);
    }
    return train;
  }

  /**
   * The scoring run's GPU memory for these settings, planned as the engine will (planResidency): resident when the
   * weights and the job fit the limit, else streamed layer by layer (with the host memory that needs and the bytes
   * uploaded per step), else the refusal of the smallest way.
   */
  estimateMemory(id: number, settings: ScoringSettings, adapter: AdapterSummary | null): void {
    const config = this.ckpt.config;
    const lora = { rank: settings.rank, alpha: settings.alpha, modules: settings.modules };
    const plan: MemoryPlan = { batchSize: settings.batchSize, seqLen: settings.seqLen, lora, weights: plannedWeightStorage(settings.weights, adapter), checkpointing: settings.checkpointing, training: true };
    // IGIA keeps the factors of every layer but 0 in host memory (igiaBytes); the GPU holds only its staging ring.
    const igia = igiaMemory(config, settings.modules, settings.rank, settings.steps);
    const igiaBytes = igia.hostBytes;
    const adapterBudget = adapter ? defaultGpuBudget(adapter) : null;
    const budget = settings.maxGpuMemory ?? adapterBudget;
    let estimate: MemoryEstimate;
    let problem = null;
    if (adapter && budget !== null) {
      try {
        estimate = planResidency(config, plan, adapter, 'auto', budget - igia.gpuBytes).estimate;
      } catch (e) {
        problem = toErrorInfo(e);
        // Shown as the smallest way it could run: streamed (when the model has layers to stream).
        const bindingBytes = Math.min(adapter.maxStorageBufferBindingSize, adapter.maxBufferSize);
        const streamed = config.numLayers > 2;
        estimate = estimateMemory(config, { ...plan, bindingBytes, residency: streamed ? 'streamed' : 'resident', checkpointing: plan.checkpointing || streamed });
      }
    } else {
      estimate = estimateMemory(config, plan);
    }
    this.post({ type: 'memoryEstimated', requestId: id, estimate, igiaBytes, problem, budget, adapterBudget });
  }

  control(id: number, action: 'pause' | 'resume' | 'stop'): void {
    const run = this.run;
    if (run) {
      if (action === 'pause') run.set(true);
      else if (action === 'resume') run.set(false);
      else run.set(false, true);
    }
    const state = !run ? 'idle' : run.stopping ? 'stopping' : run.paused ? 'paused' : 'running';
    this.post({ type: 'scoreControl', requestId: id, state });
  }


  async applyPrune(id: number, choice: PlanChoice): Promise<void> {
    const scoring = this.scoring;
    if (!scoring) throw noScores();
    if (this.run) throw busy();
    const gpu = await this.gpu();
    this.dropPruned();
    this.post({ type: 'progress', requestId: id, stage: 'Merging on the GPU' });
    const data = this.data;
    const createdAt = new Date().toISOString();
    const dataInfo = data ? { fileName: data.fileName, rows: data.dataset.totalRows } : undefined;
    const ranked = choice.rankedBy === 'code' ? scoring.layerScoresCode : scoring.layerScores;
    const plan = makePlan(ranked, this.ckpt.config, { prune: choice.prune, merge: choice.merge, keepFraction: choice.keepFraction, protectLast: choice.protectLast });
    // Only the merged receivers' weights are made (and kept); every other tensor stays in the dense files until read.
    const merge = await mergeReceivers(gpu, this.ckpt, plan, scoring.igia, (done, total) =>
      this.post({ type: 'progress', requestId: id, stage: 'Merging on the GPU', fraction: done / total }),
    );
    const run: PruneRunInfo = {
      baseModel: this.ckpt.name,
      settings: { ...scoring.settings },
      seed: scoring.settings.seed,
      data: dataInfo,
      scores: { layerScore: scoring.layerScores, moduleScore: scoring.moduleScores, layerScoreCode: scoring.layerScoresCode, rankedBy: choice.rankedBy },
      addedElements: merge.addedElements,
      createdAt,
    };
    const checkpoint = await prunedCheckpoint(this.ckpt, plan, merge.weights, this.prunedName(plan.kept.length), run);
    this.pruned = { choice, plan, run, checkpoint, evaluation: null, recovery: null, checked: null };
    const files = plannedFiles(checkpoint).sort((a, b) => a.name.localeCompare(b.name));
    this.post({
      type: 'pruned',
      requestId: id,
      plan,
      addedElements: merge.addedElements,
      files,
      totalBytes: files.reduce((s, f) => s + f.bytes, 0),
    });
  }

  private prunedName(layers: number): string {
    return `${this.ckpt.name}-gradprune-${layers}L`;
  }

  async evaluate(id: number, opts: EvaluateOptions): Promise<void> {
    const data = this.data;
    if (!data) throw noDataset();
    const pruned = this.pruned;
    if (!pruned) throw noPruned();
    const gpu = await this.gpu();
    const job = jobOf(opts);
    const examples = data.heldOut.slice(0, opts.maxExamples);
    if (examples.length === 0) {
      throw new GradPruneError('dataset', 'The held-out split is empty, so there is nothing to check on.', {
        subject: 'heldOut',
        hint: 'Hold out a share of the dataset in step 2 (e.g. 10%).',
      });
    }
    const items = examples.flatMap((e) => (e.mc ? [e.mc] : []));
    const seqLen = rowLength(examples);
    // Each model's jobs one after the other (evaluation, then generation on the same upload): when both models do not
    // fit the GPU together, each is still uploaded once.
    const prompts = examples.slice(0, opts.generations).map((e) => e.inputIds.slice(0, Math.max(1, e.promptLength)));
    const dense = await this.evalOne(id, gpu, this.ckpt, 'dense', examples, items, seqLen, data.set.padTokenId, job);
    const denseTexts = await this.generateWith(id, gpu, 'dense', this.ckpt, prompts, opts.maxNewTokens, job);
    const after = await this.evalOne(id, gpu, pruned.checkpoint, 'pruned', examples, items, seqLen, data.set.padTokenId, job);
    const prunedTexts = await this.generateWith(id, gpu, 'pruned', pruned.checkpoint, prompts, opts.maxNewTokens, job);
    const table = comparisonRows([measurementOf('dense', this.ckpt, dense), measurementOf('pruned', pruned.checkpoint, after)]);
    const generations = this.generationRows(prompts, denseTexts, prunedTexts);
    const rows = `${after.eval.rows} held-out rows of ${data.fileName}`;
    pruned.evaluation = evaluationOf(dense.eval, after.eval, rows);
    pruned.checked = { examples: examples.length, dense: dense.eval, pruned: after.eval };
    this.post({ type: 'evaluated', requestId: id, dense: dense.eval, pruned: after.eval, table, generations, precision: dense.precision });
  }

  private async evalOne(
    id: number,
    gpu: Gpu,
    ckpt: Checkpoint,
    label: string,
    examples: TokenizedExample[],
    items: NonNullable<TokenizedExample['mc']>[],
    seqLen: number,
    padTokenId: number,
    job: JobSettings,
  ): Promise<{ eval: ModelEval; cost: ForwardCost; onGpu: OnGpu; precision: ResolvedPrecision }> {
    this.post({ type: 'progress', requestId: id, stage: `Loading the ${label} model` });
    const batchSize = EVAL_BATCH;
    const weights = this.weightsSource(id, gpu, ckpt, label, job);
    try {
      const { model, precision } = await loadEvalGpuModel(gpu, ckpt.config, ckpt.store, { batchSize, seqLen, weights: job.weights, maxGpuMemory: job.maxGpuMemory, source: weights.source });
      try {
        const scoring = gpuScoringModel(model);
        const total = Math.ceil(examples.length / batchSize);
        const loss = await heldOutLoss(scoring, evalBatches(examples, { batchSize, padTokenId }), (done) =>
          this.post({ type: 'progress', requestId: id, stage: `Held-out loss of the ${label} model`, fraction: done / total }),
        );
        const out: ModelEval = { loss: loss.loss, perplexity: loss.perplexity, tokens: loss.tokens, rows: loss.rows };
        if (items.length > 0) {
          const mc = await scoreMultipleChoice(scoring, ckpt.tokenizer, items, {
            batchSize,
            onProgress: (done, all) => this.post({ type: 'progress', requestId: id, stage: `Multiple-choice accuracy of the ${label} model`, fraction: done / all }),
          });
          Object.assign(out, { acc: mc.acc, accNorm: mc.accNorm, items: mc.items });
        }
        this.post({ type: 'progress', requestId: id, stage: `Timing the ${label} model's forward pass` });
        const cost = await measureForward(model, { repeats: TIMED_PASSES, warmup: 1 });
        gpu.throwIfFailed();
        return { eval: out, cost, onGpu: { storage: model.weightStorage, residency: model.weights.residency }, precision };
      } finally {
        model.destroy();
      }
    } finally {
      weights.release();
    }
  }

  async generate(id: number, prompts: string[], maxNewTokens: number, given?: Partial<JobSettings>): Promise<void> {
    const pruned = this.pruned;
    if (!pruned) throw noPruned();
    const gpu = await this.gpu();
    const ids = prompts.map((p) => this.ckpt.tokenizer.encode(p, { addSpecialTokens: true }));
    this.post({ type: 'generated', requestId: id, generations: await this.generateFor(id, gpu, pruned.checkpoint, ids, maxNewTokens, jobOf(given)) });
  }

  private async generateFor(id: number, gpu: Gpu, pruned: Checkpoint, prompts: number[][], maxNewTokens: number, job: JobSettings): Promise<GenerationRow[]> {
    const dense = await this.generateWith(id, gpu, 'dense', this.ckpt, prompts, maxNewTokens, job);
    return this.generationRows(prompts, dense, await this.generateWith(id, gpu, 'pruned', pruned, prompts, maxNewTokens, job));
  }

  private generationRows(prompts: number[][], dense: string[], pruned: string[]): GenerationRow[] {
    const tok = this.ckpt.tokenizer;
    return prompts.map((p, i) => ({ prompt: tok.decode(p, { skipSpecialTokens: true }), dense: dense[i], pruned: pruned[i] }));
  }

  /** Greedy continuations of the prompts by one model (KV-cache generation on its cached weights). */
  private async generateWith(id: number, gpu: Gpu, label: string, ckpt: Checkpoint, prompts: number[][], maxNewTokens: number, job: JobSettings): Promise<string[]> {
    if (prompts.length === 0) return [];
    const tok = this.ckpt.tokenizer;
    const maxLength = Math.min(this.ckpt.config.maxPositionEmbeddings, Math.max(...prompts.map((p) => p.length)) + maxNewTokens);
    const stopIds = stopIdsOf(tok, this.ckpt.config.eosTokenId);
    const texts: string[] = [];
    this.post({ type: 'progress', requestId: id, stage: `Generating with the ${label} model` });
    const weights = this.weightsSource(id, gpu, ckpt, label, job);
    let generator: Generator | null = null;
    try {
      const { model } = await loadEvalGpuModel(gpu, ckpt.config, ckpt.store, { batchSize: 1, seqLen: 1, weights: job.weights, maxGpuMemory: job.maxGpuMemory, source: weights.source });
      try {
        generator = new Generator(model, maxLength);
        for (const p of prompts) {
          const g = await generateIds(generator, p, { maxNewTokens, temperature: 0, stopIds });
          texts.push(tok.decode(g.ids, { skipSpecialTokens: true }));
        }
      } finally {
        generator?.destroy();
        model.destroy();
      }
    } finally {
      weights.release();
    }
    return texts;
  }

  /**
   * Recovery fine-tuning: a fresh LoRA on the pruned model, trained on the training split (pause / resume / stop as
   * for scoring); the adapter merged into the weights (as a view, merged as read); then dense, pruned and pruned +
   * recovered measured on the same held-out examples and the same device (loss, accuracy, forward time per token).
   * The pruned model trains on its cached upload (the Check's, when it ran), and dense and pruned are measured on theirs.
   */
  async recover(id: number, settings: RecoverSettings, evaluation: RecoverEvaluation): Promise<void> {
    const data = this.data;
    if (!data) throw noDataset();
    const pruned = this.pruned;
    if (!pruned) throw noPruned();
    if (this.run) throw busy();
    const control = new RunControl();
    this.run = control;
    const previous = pruned.recovery?.recovered;
    pruned.recovery = null;
    if (previous) this.weights.evict((c) => c === previous);
    const job = jobOf(settings);
    try {
      const gpu = await this.gpu();
      const train = this.trainSplitFor(data, settings.seqLen);
      if (train.length === 0) {
        throw new GradPruneError('dataset', 'The training split is empty, so there is nothing to fine-tune on.', { subject: 'train', hint: 'Hold out fewer examples in step 2.' });
      }
      // Rows never exceed the longest example: a shorter T saves memory and time.
      const given = recoveryInput({ ...settings, seqLen: Math.min(settings.seqLen, rowLength(train)) }, train.length, job);
      this.post({ type: 'progress', requestId: id, stage: 'Uploading the pruned weights' });
      const trainWeights = this.weightsSource(id, gpu, pruned.checkpoint, 'pruned', job);
      let result: RecoveryResult;
      try {
        result = await runRecovery(gpu, pruned.checkpoint, { examples: train, padTokenId: data.set.padTokenId }, given, {
          weights: trainWeights.source,
          progressIntervalMs: 200,
          beforeStep: () => control.gate(),
          onStep: (p) =>
            this.post({
              type: 'recoverStep',
              requestId: id,
              step: p.step,
              steps: p.steps,
              losses: p.losses,
              lr: p.lr,
              gradNorm: p.gradNorm,
              epoch: p.epoch,
              tokensPerSecond: p.tokensPerSecond,
              elapsedSeconds: p.elapsedSeconds,
              etaSeconds: p.etaSeconds,
            }),
        });
      } finally {
        trainWeights.release();
      }
      if (result.steps === 0) throw new GradPruneError('cancelled', 'Fine-tuning was stopped before its first step.', { subject: 'finetune' });

      const recovered = recoveredCheckpoint(pruned.checkpoint, result.lora, result.adapters, `${pruned.checkpoint.name}-recovered`);
      const examples = data.heldOut.slice(0, evaluation.maxExamples);
      const items = examples.flatMap((e) => (e.mc ? [e.mc] : []));
      const opts = {
        batchSize: EVAL_BATCH,
        seqLen: examples.length ? rowLength(examples) : result.settings.seqLen,
        heldOut: examples,
        padTokenId: data.set.padTokenId,
        multipleChoice: items.length ? { tokenizer: this.ckpt.tokenizer, items } : null,
        repeats: TIMED_PASSES,
        weights: job.weights,
        maxGpuMemory: job.maxGpuMemory,
      };
      // Dense and pruned have not changed since a Check on the same examples: only their forward pass is timed again
      // (all three timings come from this run).
      const checked = pruned.checked?.examples === examples.length ? pruned.checked : null;
      // Measured in the order that reuses what is on the GPU (the pruned upload the training ran on first); shown
      // as dense, pruned, pruned + recovered.
      const byLabel = new Map<string, ModelMeasurement>();
      for (const [label, ckpt, known] of [['pruned', pruned.checkpoint, checked?.pruned], ['dense', this.ckpt, checked?.dense], ['pruned + recovered', recovered, undefined]] as const) {
        this.post({ type: 'progress', requestId: id, stage: `Measuring the ${label} model`, fraction: byLabel.size / 3 });
        const weights = this.weightsSource(id, gpu, ckpt, label, job);
        try {
          if (!known) {
            byLabel.set(label, await measureModel(gpu, label, ckpt, { ...opts, source: weights.source }));
            continue;
          }
          const timed = await measureModel(gpu, label, ckpt, { ...opts, heldOut: [], multipleChoice: null, source: weights.source });
          byLabel.set(label, { ...measurementOf(label, ckpt, { eval: known, cost: timed.cost! }), onGpu: timed.onGpu });
        } finally {
          weights.release();
        }
      }
      const rows = ['dense', 'pruned', 'pruned + recovered'].map((l) => byLabel.get(l)!);
      gpu.throwIfFailed();
      const adapterParameters = result.adapters.reduce((n, a) => n + a.A.length + a.B.length, 0);
      const event: RecoveredEvent = {
        type: 'recovered',
        requestId: id,
        settings: result.settings,
        steps: result.steps,
        stopped: result.steps < result.settings.steps,
        losses: result.losses,
        trainExamples: result.trainExamples,
        elapsedSeconds: result.elapsedSeconds,
        before: evalOf(rows[1]),
        after: evalOf(rows[2]),
        table: comparisonRows(rows),
        adapterParameters,
        adapterBytes: adapterParameters * 4,
        precision: resolveWeightStorage(job.weights, gpu.adapter),
      };
      pruned.recovery = { result, recovered, event };
      this.post(event);
    } finally {
      this.run = null;
    }
  }

  /** The pruned folder's small files with the last Check's numbers in its model card and recipe (unchanged when there is none). */
  private async withEvaluation(pruned: PrunedState): Promise<Map<string, Blob>> {
    if (!pruned.evaluation) return new Map(pruned.checkpoint.files);
    return withRun(this.ckpt, pruned.checkpoint, pruned.plan, { ...pruned.run, evaluation: pruned.evaluation });
  }

  /**
   * The checkpoint folder streamed as it is made (weights tensor by tensor from the dense files, the merged receivers,
   * the merged adapter): into the picked folder or zip file, or — small models — into memory and one zip.
   */
  async exportZip(id: number, adapter: AdapterExport = 'merged', target: ExportTarget = { kind: 'memory' }): Promise<void> {
    const pruned = this.pruned;
    if (!pruned) throw noPruned();
    const recovery = pruned.recovery;
    const folderName = recovery && adapter === 'merged' ? `${pruned.checkpoint.name}-recovered` : pruned.checkpoint.name;
    const { ckpt, files } = recovery ? await this.withRecovery(pruned, recovery, adapter) : { ckpt: pruned.checkpoint, files: await this.withEvaluation(pruned) };
    const base = { type: 'exported', requestId: id, folderName, adapter: recovery ? adapter : null } as const;
    if (target.kind === 'memory') {
      this.post({ type: 'progress', requestId: id, stage: `Writing ${folderName}` });
      const sink = new MemorySink();
      await writeCheckpointTo(sink, ckpt, files);
      this.post({ type: 'progress', requestId: id, stage: `Zipping ${folderName}` });
      const folder = new Map([...sink.files].sort(([a], [b]) => a.localeCompare(b)));
      this.post({ ...base, files: [...folder].map(([name, blob]) => ({ name, blob })), zip: await zipFolder(folder, folderName) });
      return;
    }
    // Streamed into the picked folder or zip file, tensor by tensor (an interrupted write is aborted and cleaned up).
    this.post({ type: 'progress', requestId: id, stage: target.kind === 'folder' ? `Writing ${folderName} into ${target.handle.name}` : `Writing ${target.handle.name}` });
    const sink: CheckpointSink = target.kind === 'folder' ? new DirectorySink(target.handle, folderName) : await zipFileSink(target.handle, folderName);
    await writeCheckpointTo(sink, ckpt, files);
    this.post({ ...base, files: [], zip: new Blob([]), savedTo: target.kind === 'folder' ? `${target.handle.name}/${folderName}` : target.handle.name });
  }

  /**
   * The folder after a recovery run: the merged checkpoint, or the pruned one with the PEFT adapter in adapter/;
   * either way the model card gains the recovery section and gradprune_recovery.json records the run.
   */
  private async withRecovery(pruned: PrunedState, recovery: RecoveryState, adapter: AdapterExport): Promise<{ ckpt: LazyCheckpoint; files: Map<string, Blob> }> {
    const folder = await this.withEvaluation(pruned);
    const data = this.data;
    const dataFile = data?.fileName ?? 'the task data';
    const card = (await folder.get('README.md')?.text()) ?? '';
    folder.set('README.md', new Blob([`${card.trimEnd()}\n\n${recoveryCardSection(recovery.event, adapter, dataFile)}`]));
    const record = recoveryRecord(recovery.event, adapter, pruned.checkpoint.name, { fileName: dataFile, rows: data?.dataset.totalRows ?? 0 });
    folder.set(RECOVERY_FILE, new Blob([JSON.stringify(record, null, 2) + '\n']));
    if (adapter === 'peft') {
      const files = writePeftAdapter({ baseModel: pruned.checkpoint.name, lora: recovery.result.lora, adapters: recovery.result.adapters, model: pruned.checkpoint.config });
      for (const [name, blob] of files) folder.set(`${PEFT_FOLDER}/${name}`, blob);
    }
    return { ckpt: adapter === 'merged' ? recovery.recovered : pruned.checkpoint, files: folder };
  }
}
