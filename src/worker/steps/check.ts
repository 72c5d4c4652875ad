// Step 5: dense vs pruned on the held-out split — loss, multiple-choice accuracy, forward time per token, all
// measured by measureModel in the session's precision on the cached weights — and side-by-side generations.
// `measureOn` is the one measurement of a model for the Check and for Recover.

import { GradPruneError } from '../../errors';
import { comparisonRows, measureModel, type MeasureOptions, type MeasurePhase, type ModelMeasurement } from '../../eval/before-after';
import { generateIds, stopIdsOf } from '../../eval/generation';
import { loadEvalGpuModel } from '../../eval/engines';
import type { Gpu } from '../../gpu/device';
import type { Checkpoint } from '../../model/checkpoint';
import { Generator } from '../../nn/generate';
import type { GenerationRow, JobSettings, ModelEval, RequestOf, ResultBody } from '../protocol';
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

/** The Check's numbers as the recipe and model card list them. */
function evaluationOf(dense: ModelEval, after: ModelEval, rows: string): CheckState['evaluation'] {
  return [
    { metric: `loss (${rows})`, before: dense.loss, after: after.loss },
    { metric: `perplexity (${rows})`, before: dense.perplexity, after: after.perplexity },
    ...(dense.acc !== undefined && after.acc !== undefined ? [{ metric: `acc (${after.items} questions)`, before: dense.acc, after: after.acc }] : []),
    ...(dense.accNorm !== undefined && after.accNorm !== undefined ? [{ metric: `acc_norm (${after.items} questions)`, before: dense.accNorm, after: after.accNorm }] : []),
  ];
}

export async function evaluate(ctx: StepContext, { options: opts }: RequestOf<'evaluate'>): Promise<ResultBody<'evaluate'>> {
  const { session } = ctx;
  const data = session.needDataset();
  const pruned = session.needPruned();
  const gpu = await ctx.gpu();
  const job = jobOf(opts);
  const examples = data.heldOut.slice(0, opts.maxExamples);
  if (examples.length === 0) {
    throw new GradPruneError('dataset', 'The held-out split is empty, so there is nothing to check on.', {
      subject: 'heldOut',
      hint: 'Hold out a share of the dataset in step 2 (e.g. 10%).',
    });
  }
  const items = examples.flatMap((e) => (e.mc ? [e.mc] : []));
  const rows: MeasureRows = {
    seqLen: rowLength(examples),
    heldOut: examples,
    padTokenId: data.set.padTokenId,
    multipleChoice: items.length ? { tokenizer: session.checkpoint.tokenizer, items } : null,
  };
  // Each model's jobs one after the other (evaluation, then generation on the same upload): when both models do not
  // fit the GPU together, each is still uploaded once.
  const prompts = examples.slice(0, opts.generations).map((e) => e.inputIds.slice(0, Math.max(1, e.promptLength)));
  const dense = await measureOn(ctx, gpu, 'dense', session.checkpoint, job, rows);
  const denseTexts = await generateWith(ctx, gpu, 'dense', session.checkpoint, prompts, opts.maxNewTokens, job);
  const after = await measureOn(ctx, gpu, 'pruned', pruned.checkpoint, job, rows);
  const prunedTexts = await generateWith(ctx, gpu, 'pruned', pruned.checkpoint, prompts, opts.maxNewTokens, job);
  const [denseEval, prunedEval] = [evalOf(dense)!, evalOf(after)!];
  const evaluation = evaluationOf(denseEval, prunedEval, `${prunedEval.rows} held-out rows of ${data.fileName}`);
  if (session.pruned === pruned) session.check = { examples: examples.length, dense, pruned: after, evaluation };
  return {
    dense: denseEval,
    pruned: prunedEval,
    table: comparisonRows([dense, after]),
    generations: generationRows(ctx, prompts, denseTexts, prunedTexts),
    precision: dense.onGpu!.precision,
  };
}

export async function generate(ctx: StepContext, req: RequestOf<'generate'>): Promise<ResultBody<'generate'>> {
  const { session } = ctx;
  const pruned = session.needPruned();
  const gpu = await ctx.gpu();
  const job = jobOf(req);
  const prompts = req.prompts.map((p) => session.checkpoint.tokenizer.encode(p, { addSpecialTokens: true }));
  const dense = await generateWith(ctx, gpu, 'dense', session.checkpoint, prompts, req.maxNewTokens, job);
  return { generations: generationRows(ctx, prompts, dense, await generateWith(ctx, gpu, 'pruned', pruned.checkpoint, prompts, req.maxNewTokens, job)) };
}

function generationRows(ctx: StepContext, prompts: number[][], dense: string[], pruned: string[]): GenerationRow[] {
  const tok = ctx.session.checkpoint.tokenizer;
  return prompts.map((p, i) => ({ prompt: tok.decode(p, { skipSpecialTokens: true }), dense: dense[i], pruned: pruned[i] }));
}

/** Greedy continuations of the prompts by one model (KV-cache generation on its cached weights). */
async function generateWith(ctx: StepContext, gpu: Gpu, label: string, ckpt: Checkpoint, prompts: number[][], maxNewTokens: number, job: JobSettings): Promise<string[]> {
  if (prompts.length === 0) return [];
  const dense = ctx.session.checkpoint;
  const tok = dense.tokenizer;
  const maxLength = Math.min(dense.config.maxPositionEmbeddings, Math.max(...prompts.map((p) => p.length)) + maxNewTokens);
  const stopIds = stopIdsOf(tok, dense.config.eosTokenId);
  const texts: string[] = [];
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
    } finally {
      generator?.destroy();
      model.destroy();
    }
  } finally {
    weights.release();
  }
  return texts;
}
