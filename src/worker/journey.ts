// The studio's steps after the model, in the worker: dataset → scoring → prune → check → export. One Journey per
// loaded model; it keeps the engine state each later step needs (the dataset, the last scores and their IGIA
// state, the pruned checkpoint) and drops what a new earlier step makes stale.

import { buildExamples, previewDataset, readDataset, splitTrainHeldOut, type Dataset, type TokenizedExample, type TokenizedSet } from '../data';
import { evalBatches } from '../data/batch';
import { GradPruneError, toErrorInfo } from '../errors';
import { gpuScoringModel } from '../eval/engines';
import { generateIds, stopIdsOf } from '../eval/generation';
import { Generator } from '../nn/generate';
import { heldOutLoss } from '../eval/loss';
import { scoreMultipleChoice } from '../eval/multiple-choice';
import { modelCard } from '../export/model-card';
import { RECIPE_FILE } from '../export/checkpoint';
import type { PruneRunInfo } from '../export/recipe';
import { zipFolder } from '../export/zip';
import type { PrunePlan } from '../gradprune/plan';
import type { Gpu } from '../gpu/device';
import { runPrune, runScoring, type ScoringResult, type ScoringSettings } from '../gradprune/pipeline';
import { openCheckpoint, type Checkpoint } from '../model/checkpoint';
import { GpuModel } from '../nn/model';
import { checkMemory, estimateMemory } from '../nn/memory';
import { factorBytes } from '../gradprune/igia';
import type { AdapterSummary } from '../gpu/device';
import type {
  DatasetInfo,
  DatasetOptions,
  EvaluateOptions,
  FileEntry,
  GenerationRow,
  ModelEval,
  PlanChoice,
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
}

interface PrunedState {
  choice: PlanChoice;
  plan: PrunePlan;
  /** What the model card and recipe say about the run (as runPrune wrote them), for adding the evaluation. */
  run: PruneRunInfo;
  files: Map<string, Blob>;
  checkpoint: Checkpoint;
  /** The last Check of this pruned model, written into the model card and recipe on export. */
  evaluation: PruneRunInfo['evaluation'] | null;
}

/** Pause / resume / stop of the one scoring run at a time. */
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

const snapshot = (steps: number, layerScores: number[], moduleScores: number[][], layerScoresCode: number[]): ScoreSnapshot => ({
  steps,
  layerScores,
  moduleScores,
  layerScoresCode,
});

export class Journey {
  private data: DatasetState | null = null;
  private scoring: ScoringResult | null = null;
  private pruned: PrunedState | null = null;
  private run: RunControl | null = null;

  constructor(
    private readonly ckpt: Checkpoint,
    private readonly gpu: () => Promise<Gpu>,
    private readonly post: Post,
  ) {}

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
    this.data = { file, fileName, dataset, set, train, heldOut, options };
    this.scoring = null;
    this.pruned = null;
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
    if (this.run) throw new GradPruneError('input', 'A scoring run is already going.', { subject: 'scoring', hint: 'Stop it first.' });
    const seqLen = settings.seqLen ?? data.options.maxSeqLen;
    // The engine holds rows of seqLen tokens: tokenize for it when the dataset was read for another length.
    let train = data.train;
    if (seqLen !== data.set.maxSeqLen) {
      const set = buildExamples(data.dataset, this.ckpt.tokenizer, { maxSeqLen: seqLen });
      train = splitTrainHeldOut(set.examples, { heldOut: data.options.heldOut, seed: data.options.seed }).train;
    }
    const longest = train.reduce((m, e) => Math.max(m, e.inputIds.length), 0);
    const gpu = await this.gpu();
    const control = new RunControl();
    this.run = control;
    this.scoring = null;
    this.pruned = null;
    this.post({ type: 'progress', requestId: id, stage: 'Uploading the weights' });
    try {
      // Rows never exceed the longest example: a shorter T saves memory and time.
      const result = await runScoring(
        gpu,
        this.ckpt,
        { kind: 'examples', examples: train, padTokenId: data.set.padTokenId },
        { ...settings, seqLen: Math.min(seqLen, Math.max(2, longest)) },
        {
          onLoad: (done, total) => this.post({ type: 'progress', requestId: id, stage: 'Uploading the weights', fraction: total ? done / total : undefined }),
          progressIntervalMs: 200,
          beforeStep: () => control.gate(),
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
      this.run = null;
    }
  }

  estimateMemory(id: number, settings: ScoringSettings, adapter: AdapterSummary | null): void {
    const config = this.ckpt.config;
    const lora = { rank: settings.rank, alpha: settings.alpha, modules: settings.modules };
    const estimate = estimateMemory(config, { batchSize: settings.batchSize, seqLen: settings.seqLen, lora, weights: settings.weights, checkpointing: settings.checkpointing, training: true });
    // Factors are kept for every layer but 0 (never merged); the Gram and score buffers are negligible beside them.
    let igiaBytes = 0;
    for (let l = 1; l < config.numLayers; l++) for (const m of settings.modules) igiaBytes += factorBytes(config, m, settings.rank, settings.steps);
    let problem = null;
    if (adapter) {
      try {
        checkMemory({ ...estimate, total: estimate.total + igiaBytes }, adapter);
      } catch (e) {
        problem = toErrorInfo(e);
      }
    }
    this.post({ type: 'memoryEstimated', requestId: id, estimate, igiaBytes, problem });
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
    const gpu = await this.gpu();
    this.pruned = null;
    this.post({ type: 'progress', requestId: id, stage: 'Merging on the GPU and writing the checkpoint' });
    const data = this.data;
    const createdAt = new Date().toISOString();
    const dataInfo = data ? { fileName: data.fileName, rows: data.dataset.totalRows } : undefined;
    const result = await runPrune(
      gpu,
      this.ckpt,
      {
        layerScores: scoring.layerScores,
        layerScoresCode: scoring.layerScoresCode,
        moduleScores: scoring.moduleScores,
        rankBy: choice.rankedBy,
        settings: scoring.settings,
        data: dataInfo,
      },
      scoring.igia,
      { prune: choice.prune, merge: choice.merge, keepFraction: choice.keepFraction, protectLast: choice.protectLast, createdAt },
    );
    this.post({ type: 'progress', requestId: id, stage: 'Opening the pruned checkpoint' });
    const checkpoint = await openCheckpoint(result.files, this.prunedName(result.plan.kept.length));
    const run: PruneRunInfo = {
      baseModel: this.ckpt.name,
      settings: { ...scoring.settings },
      seed: scoring.settings.seed,
      data: dataInfo,
      scores: { layerScore: scoring.layerScores, moduleScore: scoring.moduleScores, layerScoreCode: scoring.layerScoresCode, rankedBy: choice.rankedBy },
      addedElements: result.merge.addedElements,
      createdAt,
    };
    this.pruned = { choice, plan: result.plan, run, files: result.files, checkpoint, evaluation: null };
    const files = [...result.files].map(([name, blob]) => ({ name, bytes: blob.size })).sort((a, b) => a.name.localeCompare(b.name));
    this.post({
      type: 'pruned',
      requestId: id,
      plan: result.plan,
      addedElements: result.merge.addedElements,
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
    const examples = data.heldOut.slice(0, opts.maxExamples);
    if (examples.length === 0) {
      throw new GradPruneError('dataset', 'The held-out split is empty, so there is nothing to check on.', {
        subject: 'heldOut',
        hint: 'Hold out a share of the dataset in step 2 (e.g. 10%).',
      });
    }
    const items = examples.flatMap((e) => (e.mc ? [e.mc] : []));
    const seqLen = Math.max(2, examples.reduce((m, e) => Math.max(m, e.inputIds.length), 0));
    const dense = await this.evalOne(id, gpu, this.ckpt, 'dense', examples, items, seqLen, data.set.padTokenId);
    const after = await this.evalOne(id, gpu, pruned.checkpoint, 'pruned', examples, items, seqLen, data.set.padTokenId);
    const generations = await this.sideBySide(id, gpu, pruned.checkpoint, examples.slice(0, opts.generations), opts.maxNewTokens);
    const rows = `${after.rows} held-out rows of ${data.fileName}`;
    pruned.evaluation = [
      { metric: `loss (${rows})`, before: dense.loss, after: after.loss },
      { metric: `perplexity (${rows})`, before: dense.perplexity, after: after.perplexity },
      ...(dense.acc !== undefined && after.acc !== undefined ? [{ metric: `acc (${after.items} questions)`, before: dense.acc, after: after.acc }] : []),
      ...(dense.accNorm !== undefined && after.accNorm !== undefined ? [{ metric: `acc_norm (${after.items} questions)`, before: dense.accNorm, after: after.accNorm }] : []),
    ];
    this.post({ type: 'evaluated', requestId: id, dense, pruned: after, generations });
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
  ): Promise<ModelEval> {
    this.post({ type: 'progress', requestId: id, stage: `Loading the ${label} model` });
    const batchSize = 4;
    const model = await GpuModel.load(gpu, ckpt.config, ckpt.store, { batchSize, seqLen, lora: null, training: false });
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
      gpu.throwIfFailed();
      return out;
    } finally {
      model.destroy();
    }
  }

  /** Greedy continuations of held-out prompts by both models (prompt = the tokens before the first target). */
  private async sideBySide(id: number, gpu: Gpu, pruned: Checkpoint, examples: TokenizedExample[], maxNewTokens: number): Promise<GenerationRow[]> {
    const prompts = examples.map((e) => e.inputIds.slice(0, Math.max(1, e.promptLength)));
    return this.generateFor(id, gpu, pruned, prompts, maxNewTokens);
  }

  async generate(id: number, prompts: string[], maxNewTokens: number): Promise<void> {
    const pruned = this.pruned;
    if (!pruned) throw noPruned();
    const gpu = await this.gpu();
    const ids = prompts.map((p) => this.ckpt.tokenizer.encode(p, { addSpecialTokens: true }));
    this.post({ type: 'generated', requestId: id, generations: await this.generateFor(id, gpu, pruned.checkpoint, ids, maxNewTokens) });
  }

  private async generateFor(id: number, gpu: Gpu, pruned: Checkpoint, prompts: number[][], maxNewTokens: number): Promise<GenerationRow[]> {
    if (prompts.length === 0) return [];
    const tok = this.ckpt.tokenizer;
    const maxLength = Math.min(this.ckpt.config.maxPositionEmbeddings, Math.max(...prompts.map((p) => p.length)) + maxNewTokens);
    const stopIds = stopIdsOf(tok, this.ckpt.config.eosTokenId);
    const texts: Record<'dense' | 'pruned', string[]> = { dense: [], pruned: [] };
    for (const [label, ckpt] of [['dense', this.ckpt], ['pruned', pruned]] as const) {
      this.post({ type: 'progress', requestId: id, stage: `Generating with the ${label} model` });
      const model = await GpuModel.load(gpu, ckpt.config, ckpt.store, { batchSize: 1, seqLen: 1, lora: null, training: false });
      let generator: Generator | null = null;
      try {
        generator = new Generator(model, maxLength);
        for (const p of prompts) {
          const g = await generateIds(generator, p, { maxNewTokens, temperature: 0, stopIds });
          texts[label].push(tok.decode(g.ids, { skipSpecialTokens: true }));
        }
      } finally {
        generator?.destroy();
        model.destroy();
      }
    }
    return prompts.map((p, i) => ({ prompt: tok.decode(p, { skipSpecialTokens: true }), dense: texts.dense[i], pruned: texts.pruned[i] }));
  }

  /** The exported folder with the last Check's numbers in its model card and recipe (unchanged when there is none). */
  private async withEvaluation(pruned: PrunedState): Promise<Map<string, Blob>> {
    if (!pruned.evaluation) return pruned.files;
    const files = new Map(pruned.files);
    files.set('README.md', new Blob([modelCard({ ...pruned.run, evaluation: pruned.evaluation }, pruned.plan, this.ckpt.dtype)]));
    const recipe = files.get(RECIPE_FILE);
    if (recipe) files.set(RECIPE_FILE, new Blob([JSON.stringify({ ...JSON.parse(await recipe.text()), evaluation: pruned.evaluation }, null, 2) + '\n']));
    return files;
  }

  async exportZip(id: number): Promise<void> {
    const pruned = this.pruned;
    if (!pruned) throw noPruned();
    const folderName = pruned.checkpoint.name;
    this.post({ type: 'progress', requestId: id, stage: `Zipping ${folderName}` });
    const folder = await this.withEvaluation(pruned);
    const zip = await zipFolder(folder, folderName);
    const files: FileEntry[] = [...folder].map(([name, blob]) => ({ name, blob }));
    this.post({ type: 'exported', requestId: id, folderName, files, zip });
  }
}
