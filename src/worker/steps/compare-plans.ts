// The Check's comparison of methods: for each chosen method and each N, the plan by that method's ranking from the
// last scoring run (dropped, no merge — IGIA's too, so the rows differ only in which layers go), measured on the
// Check's held-out rows with the CLI compare's evaluation (../../gradprune/compare.ts; untimed: the Check's table
// has the forward times), beside the dense model.
// Every plan is made before any model is measured, so a method without a ranking for some N is refused up front.

import { GradPruneError } from '../../errors';
import { parameterCount } from '../../eval/before-after';
import { evaluate, type Evaluation } from '../../gradprune/compare';
import { importanceMethod } from '../../gradprune/importance';
import { makePlan, type PrunePlan } from '../../gradprune/plan';
import { prunedView } from '../../gradprune/pruned-view';
import type { PlanEvaluation, RequestOf, ResultBody } from '../protocol';
import { jobOf, type StepContext } from '../session';
import { checkRows } from './check';
import { rankedScoresFor, STUDIO_METHODS } from './method-rankings';

const numbersOf = (e: Evaluation): Pick<PlanEvaluation, 'loss' | 'perplexity' | 'acc' | 'accNorm'> => ({
  loss: e.loss,
  perplexity: e.perplexity,
  ...(e.accuracy ? { acc: e.accuracy.acc, accNorm: e.accuracy.accNorm } : {}),
});

export async function evaluatePlans(ctx: StepContext, { options: opts }: RequestOf<'evaluatePlans'>): Promise<ResultBody<'evaluatePlans'>> {
  const { session } = ctx;
  const data = session.needDataset();
  const scoring = session.needScoring();
  const dense = session.checkpoint;
  const L = dense.config.numLayers;
  if (opts.methods.length === 0) throw new GradPruneError('input', 'No method is chosen to compare.', { subject: 'methods', hint: 'Tick at least one method.' });
  if (opts.counts.length === 0 || opts.counts.some((n) => !Number.isInteger(n) || n < 1 || n > L - 1)) {
    throw new GradPruneError('input', `The layers to remove must be whole numbers from 1 to ${L - 1} (this model has ${L} layers); got ${JSON.stringify(opts.counts)}.`, {
      subject: 'counts',
      hint: `Choose a range of N within 1 .. ${L - 1}.`,
    });
  }
  const plans: { method: (typeof STUDIO_METHODS)[number]['method']; title: string; plan: PrunePlan }[] = [];
  for (const method of opts.methods) {
    const studio = STUDIO_METHODS.find((m) => m.method === method);
    if (!studio) {
      throw new GradPruneError('input', `The method '${method}' has no ranking in the studio (it has ${STUDIO_METHODS.map((m) => m.method).join(', ')}).`, {
        subject: 'methods',
        hint: 'Compare it with the CLI: gradprune compare --methods.',
      });
    }
    for (const prune of opts.counts) {
      const scores = await rankedScoresFor(dense, scoring, studio.rankedBy, prune);
      plans.push({ method, title: importanceMethod(method).title, plan: makePlan(scores, dense.config, { prune, merge: 0 }) });
    }
  }
  const examples = checkRows(data, opts.maxExamples);
  const gpu = await ctx.gpu();
  const job = jobOf(opts);
  const settings = { batchSize: scoring.settings.batchSize, maxGpuMemory: job.maxGpuMemory };
  const measured = { padTokenId: data.set.padTokenId, tokenizer: dense.tokenizer };
  const total = plans.length + 1;
  ctx.progress('Held-out loss of the dense model', 0);
  const denseParams = parameterCount(dense.config);
  const out: PlanEvaluation[] = [
    { method: null, title: 'dense', prune: 0, pruned: [], params: denseParams, removedFraction: 0, ...numbersOf(await evaluate(gpu, dense, examples, measured, { settings, weights: job.weights }, false)) },
  ];
  for (const [i, { method, title, plan }] of plans.entries()) {
    ctx.progress(`${title}, ${plan.pruned.length} layers removed (${plan.pruned.join(', ')}): plan ${i + 1} of ${plans.length}`, (i + 1) / total);
    const view = prunedView(dense, plan);
    const params = parameterCount(view.config);
    const e = await evaluate(gpu, view, examples, measured, { settings, weights: job.weights }, false);
    out.push({ method, title, prune: plan.pruned.length, pruned: plan.pruned, params, removedFraction: 1 - params / denseParams, ...numbersOf(e) });
  }
  return { plans: out, rows: examples.length, items: examples.filter((e) => e.mc).length };
}
