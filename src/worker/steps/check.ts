// Step 5: dense vs pruned on the held-out split — loss, multiple-choice accuracy, forward time per token, all
// measured by measureModel in the session's precision on the cached weights — side-by-side generations, and, when
// asked, every held-out prompt answered greedily by both models and scored by exact match against its label.
// `measureOn` is the one measurement of a model for the Check and for Recover.

import { GradPruneError } from '../../errors';
import { comparisonRows, measureModel, type MeasureOptions, type MeasurePhase, type ModelMeasurement } from '../../eval/before-after';
import { exactMatchItems, generationLength, marginFor, requireExactMatchItems, scoreExactMatch, type ExactMatchItem, type ExactMatchResult, type SkippedRow } from '../../eval/exact-match';
import { checkpointStopIds, generateIds } from '../../eval/generation';
import { loadEvalGpuModel } from '../../eval/engines';
import type { Gpu } from '../../gpu/device';
import type { Checkpoint } from '../../model/checkpoint';
import type { TextTokenizer } from '../../model/tokenizer';
import { Generator } from '../../nn/generate';
import type { ExactMatchView, GenerationRow, JobSettings, ModelEval, RequestOf, ResultBody } from '../protocol';
import { jobOf, type CheckState, type StepContext } from '../session';
import { rowLength } from './dataset';

/** Batch size of the evaluation passes and of the timed forward passes (small: software GPUs are slow). */
const EVAL_BATCH = 4;
/** Timed forward passes per model (after one warm-up); the median counts. */
const TIMED_PASSES = 3;

const STAGE: Record<MeasurePhase, (label: string) => string> = {
  loss: (label) => `Held-out loss of the ${label} model`,
  choices: (label) => `Multiple-choice accuracy of the ${label} model`,
  timing: (label) => `Timing the ${label} model's forward pass`,
};

export type MeasureRows = Pick<MeasureOptions, 'seqLen' | 'heldOut' | 'padTokenId' | 'multipleChoice'>;

/** One model measured on its cached weights in the session's precision and limit, with progress for people. */
export async function measureOn(ctx: StepContext, gpu: Gpu, label: string, ckpt: Checkpoint, job: JobSettings, rows: MeasureRows): Promise<ModelMeasurement> {
  ctx.progress(`Loading the ${label} model`);
  const weights = ctx.session.weightsFor(ctx, gpu, ckpt, label, job);
  try {
    return await measureModel(gpu, label, ckpt, {
      ...rows,
      batchSize: EVAL_BATCH,
      repeats: TIMED_PASSES,
      weights: job.weights,
      maxGpuMemory: job.maxGpuMemory,
      source: weights.source,
      onProgress: (phase, done, total) => ctx.progress(STAGE[phase](label), phase === 'timing' ? undefined : done / total),
    });
  } finally {
    weights.release();
  }
}

/** A measured model's held-out numbers as the protocol's ModelEval (null when nothing was held out). */
export const evalOf = (m: ModelMeasurement): ModelEval | null =>
  m.heldOut
    ? {
        loss: m.heldOut.loss,
        perplexity: m.heldOut.perplexity,
        tokens: m.heldOut.tokens,
        rows: m.heldOut.rows,
        ...(m.accuracy ? { acc: m.accuracy.acc, accNorm: m.accuracy.accNorm, items: m.accuracy.items } : {}),
      }
    : null;

/** A measurement with its exact match (when answered). */
const withExactMatch = (m: ModelMeasurement, em: ExactMatchResult | null): ModelMeasurement =>
  em ? { ...m, exactMatch: { exactMatch: em.exactMatch, normalizedExactMatch: em.normalizedExactMatch, items: em.items } } : m;

/** The protocol's ModelEval of a measurement, with its exact match. */
function evalWithExactMatch(m: ModelMeasurement): ModelEval {
  const e = evalOf(m)!;
  return m.exactMatch ? { ...e, exactMatch: m.exactMatch.exactMatch, normalizedExactMatch: m.exactMatch.normalizedExactMatch, answered: m.exactMatch.items } : e;
}

/** The Check's numbers as the recipe and model card list them. */
function evaluationOf(dense: ModelEval, after: ModelEval, rows: string): CheckState['evaluation'] {
  const answered = `${after.answered} greedy answers`;
  return [
    { metric: `loss (${rows})`, before: dense.loss, after: after.loss },
    { metric: `perplexity (${rows})`, before: dense.perplexity, after: after.perplexity },
    ...(dense.acc !== undefined && after.acc !== undefined ? [{ metric: `acc (${after.items} questions)`, before: dense.acc, after: after.acc }] : []),
    ...(dense.accNorm !== undefined && after.accNorm !== undefined ? [{ metric: `acc_norm (${after.items} questions)`, before: dense.accNorm, after: after.accNorm }] : []),
    ...(dense.exactMatch !== undefined && after.exactMatch !== undefined ? [{ metric: `exact_match (${answered})`, before: dense.exactMatch, after: after.exactMatch }] : []),
    ...(dense.normalizedExactMatch !== undefined && after.normalizedExactMatch !== undefined
      ? [{ metric: `exact_match, normalised (${answered})`, before: dense.normalizedExactMatch, after: after.normalizedExactMatch }]
      : []),
  ];
}

/** The held-out rows the Check measures on (the first maxExamples); an empty split is refused. */
export function checkRows(data: NonNullable<StepContext['session']['dataset']>, maxExamples: number) {
  const examples = data.heldOut.slice(0, maxExamples);
  if (examples.length === 0) {
    throw new GradPruneError('dataset', 'The held-out split is empty, so there is nothing to check on.', {
      subject: 'heldOut',
      hint: 'Hold out a share of the dataset in step 2 (e.g. 10%).',
    });
  }
  return examples;
}

export async function evaluate(ctx: StepContext, { options: opts }: RequestOf<'evaluate'>): Promise<ResultBody<'evaluate'>> {
  const { session } = ctx;
  const data = session.needDataset();
  const pruned = session.needPruned();
  const gpu = await ctx.gpu();
  const job = jobOf(opts);
  const examples = checkRows(data, opts.maxExamples);
  const items = examples.flatMap((e) => (e.mc ? [e.mc] : []));
  const rows: MeasureRows = {
    seqLen: rowLength(examples),
    heldOut: examples,
    padTokenId: data.set.padTokenId,
    multipleChoice: items.length ? { tokenizer: session.checkpoint.tokenizer, items } : null,
  };
  // The held-out rows' prompts and labels, refused before any model work when none has both.
  const answering = opts.exactMatch ? answerable(data, examples, session.checkpoint.tokenizer) : null;
  // Each model's jobs one after the other (evaluation, then generation on the same upload): when both models do not
  // fit the GPU together, each is still uploaded once.
  const prompts = examples.slice(0, opts.generations).map((e) => e.inputIds.slice(0, Math.max(1, e.promptLength)));
  const answers = answering && { items: answering.items, margin: marginFor(data.set.appendEos) };
  const denseMeasured = await measureOn(ctx, gpu, 'dense', session.checkpoint, job, rows);
  const denseOut = await generateWith(ctx, gpu, 'dense', session.checkpoint, prompts, opts.maxNewTokens, job, answers);
  const afterMeasured = await measureOn(ctx, gpu, 'pruned', pruned.checkpoint, job, rows);
  const prunedOut = await generateWith(ctx, gpu, 'pruned', pruned.checkpoint, prompts, opts.maxNewTokens, job, answers);
  const dense = withExactMatch(denseMeasured, denseOut.exactMatch);
  const after = withExactMatch(afterMeasured, prunedOut.exactMatch);
  const [denseEval, prunedEval] = [evalWithExactMatch(dense), evalWithExactMatch(after)];
  const evaluation = evaluationOf(denseEval, prunedEval, `${prunedEval.rows} held-out rows of ${data.fileName}`);
  if (session.pruned === pruned) session.check = { examples: examples.length, dense, pruned: after, evaluation };
  return {
    dense: denseEval,
    pruned: prunedEval,
    table: comparisonRows([dense, after]),
    generations: generationRows(ctx, prompts, denseOut.texts, prunedOut.texts),
    exactMatch: answering && denseOut.exactMatch && prunedOut.exactMatch ? answerPairs(ctx, answering, denseOut.exactMatch, prunedOut.exactMatch, answers!.margin) : null,
    precision: dense.onGpu!.precision,
  };
}

/** The held-out rows that have a prompt and a label (their raw rows found by line); none at all is refused. */
function answerable(data: NonNullable<StepContext['session']['dataset']>, examples: readonly { line: number }[], tokenizer: TextTokenizer) {
  const byLine = new Map(data.dataset.examples.map((e) => [e.line, e]));
  const raw = examples.flatMap((e) => (byLine.has(e.line) ? [byLine.get(e.line)!] : []));
  const found = exactMatchItems(raw, tokenizer, data.dataset.lineKind);
  requireExactMatchItems(data.fileName, data.dataset.format, found.items, found.skipped);
  return found;
}

function answerPairs(ctx: StepContext, answering: { items: ExactMatchItem[]; skipped: SkippedRow[] }, dense: ExactMatchResult, pruned: ExactMatchResult, margin: number): ExactMatchView {
  const tok = ctx.session.checkpoint.tokenizer;
  return {
    rows: answering.items.map((item, i) => ({
      where: item.where,
      prompt: tok.decode(item.promptIds, { skipSpecialTokens: true }),
      label: item.label,
      dense: dense.rows[i].generated,
      pruned: pruned.rows[i].generated,
      denseMatch: dense.rows[i].match,
      prunedMatch: pruned.rows[i].match,
      denseNormalizedMatch: dense.rows[i].normalizedMatch,
      prunedNormalizedMatch: pruned.rows[i].normalizedMatch,
    })),
    skipped: answering.skipped.length,
    margin,
  };
}

export async function generate(ctx: StepContext, req: RequestOf<'generate'>): Promise<ResultBody<'generate'>> {
  const { session } = ctx;
  const pruned = session.needPruned();
  const gpu = await ctx.gpu();
  const job = jobOf(req);
  const prompts = req.prompts.map((p) => session.checkpoint.tokenizer.encode(p, { addSpecialTokens: true }));
  const dense = await generateWith(ctx, gpu, 'dense', session.checkpoint, prompts, req.maxNewTokens, job);
  const after = await generateWith(ctx, gpu, 'pruned', pruned.checkpoint, prompts, req.maxNewTokens, job);
  return { generations: generationRows(ctx, prompts, dense.texts, after.texts) };
}

function generationRows(ctx: StepContext, prompts: number[][], dense: string[], pruned: string[]): GenerationRow[] {
  const tok = ctx.session.checkpoint.tokenizer;
  return prompts.map((p, i) => ({ prompt: tok.decode(p, { skipSpecialTokens: true }), dense: dense[i], pruned: pruned[i] }));
}

/**
 * Greedy continuations of the prompts by one model (KV-cache generation on its cached weights), and its answers to
 * the exact-match items on the same Generator.
 */
async function generateWith(
  ctx: StepContext,
  gpu: Gpu,
  label: string,
  ckpt: Checkpoint,
  prompts: number[][],
  maxNewTokens: number,
  job: JobSettings,
  answers: { items: ExactMatchItem[]; margin: number } | null = null,
): Promise<{ texts: string[]; exactMatch: ExactMatchResult | null }> {
  if (prompts.length === 0 && !answers) return { texts: [], exactMatch: null };
  const dense = ctx.session.checkpoint;
  const tok = dense.tokenizer;
  const cap = dense.config.maxPositionEmbeddings;
  const maxLength = Math.max(
    prompts.length ? Math.min(cap, Math.max(...prompts.map((p) => p.length)) + maxNewTokens) : 2,
    answers ? generationLength(answers.items, { margin: answers.margin }, cap) : 2,
  );
  const stopIds = checkpointStopIds(dense);
  const texts: string[] = [];
  let exactMatch: ExactMatchResult | null = null;
  ctx.progress(`Generating with the ${label} model`);
  const weights = ctx.session.weightsFor(ctx, gpu, ckpt, label, job);
  let generator: Generator | null = null;
  try {
    const { model } = await loadEvalGpuModel(gpu, ckpt.config, ckpt.store, { batchSize: 1, seqLen: 1, weights: job.weights, maxGpuMemory: job.maxGpuMemory, source: weights.source });
    try {
      generator = new Generator(model, maxLength);
      for (const p of prompts) {
        const g = await generateIds(generator, p, { maxNewTokens, temperature: 0, stopIds });
        texts.push(tok.decode(g.ids, { skipSpecialTokens: true }));
      }
      if (answers) {
        const progress = (done: number, total: number) => ctx.progress(`Answering the held-out prompts with the ${label} model`, done / total);
        exactMatch = await scoreExactMatch(generator, tok, answers.items, { margin: answers.margin, stopIds, onProgress: progress });
      }
    } finally {
      generator?.destroy();
      model.destroy();
    }
  } finally {
    weights.release();
  }
  return { texts, exactMatch };
}
