// Step 4: the person's plan over the last scores, merged on the GPU one receiver weight at a time; the pruned model
// is a view over the dense files (./../lazy-checkpoint.ts), its folder's files and sizes known before any is written.

import { preparePrune } from '../../gradprune/pipeline';
import { mergesAllowed } from '../../gradprune/plan';
import { mergeReceivers, plannedFiles, prunedCheckpoint } from '../lazy-checkpoint';
import type { RequestOf, ResultBody } from '../protocol';
import type { StepContext } from '../session';
import { rankedScoresFor } from './method-rankings';

export async function applyPrune(ctx: StepContext, { plan: choice }: RequestOf<'applyPrune'>): Promise<ResultBody<'applyPrune'>> {
  const { session } = ctx;
  const scoring = session.needScoring();
  session.notTraining();
  // Another method's plan ranks by that method's scores for this N (and never merges: preparePrune refuses it).
  const rankedScores = mergesAllowed(choice.rankedBy) ? undefined : await rankedScoresFor(session.checkpoint, scoring, choice.rankedBy, choice.prune);
  const gpu = await ctx.gpu();
  session.dropAfter('scoring');
  ctx.progress('Merging on the GPU');
  const dense = session.checkpoint;
  const data = session.dataset;
  const scores = { ...scoring, rankBy: choice.rankedBy, rankedScores, data: data && { fileName: data.fileName, rows: data.dataset.totalRows, format: data.dataset.format, template: data.dataset.template, appendEos: data.set.appendEos } };
  const { prune, merge: mergeCount, keepFraction, protectLast } = choice;
  const prepared = preparePrune(gpu, dense, scores, scoring.igia, { prune, merge: mergeCount, keepFraction, protectLast, createdAt: new Date().toISOString() });
  const { plan } = prepared;
  // Only the merged receivers' weights are made (and kept); every other tensor stays in the dense files until read.
  const merge = await mergeReceivers(gpu, dense, plan, prepared.source, (done, total) => ctx.progress('Merging on the GPU', done / total));
  const run = prepared.runInfo(merge.addedElements);
  const checkpoint = await prunedCheckpoint(dense, plan, merge.weights, `${dense.name}-gradprune-${plan.kept.length}L`, run);
  session.pruned = { plan, run, checkpoint };
  const files = plannedFiles(checkpoint).sort((a, b) => a.name.localeCompare(b.name));
  return { plan, addedElements: merge.addedElements, files, totalBytes: files.reduce((s, f) => s + f.bytes, 0) };
}
