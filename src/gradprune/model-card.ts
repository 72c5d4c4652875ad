// README.md of a pruned checkpoint: what it is, how it was made (with the paper), the plan and the scores.

import type { PrunePlan } from './plan';
import { PAPER, scoringSteps, type PruneRunInfo } from './recipe';

const fmtInt = (n: number) => n.toLocaleString('en-US');
const fmtBytes = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(2)} MiB`);
const pct = (after: number, before: number) => `${(100 * (1 - after / before)).toFixed(1)}%`;

/** The settings table's rows: the steps as run (and planned, when stopped early), the seed once. */
function settingRows(run: PruneRunInfo): string[] {
  const steps = scoringSteps(run);
  const cell = (k: string, v: unknown) => {
    if (k === 'steps' && steps.stoppedEarly) return `${steps.run} (stopped early: ${steps.planned} were planned)`;
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  };
  const rows = Object.entries(run.settings).map(([k, v]) => `| ${k} | ${cell(k, v)} |`);
  if (steps.run !== null && !('steps' in run.settings)) rows.push(`| steps | ${steps.run} |`);
  if (run.seed !== undefined && !('seed' in run.settings)) rows.push(`| seed | ${run.seed} |`);
  return rows;
}

export function modelCard(run: PruneRunInfo, plan: PrunePlan, dtype: string): string {
  const { before, after } = plan;
  const stopped = scoringSteps(run);
  const lines: string[] = [
    '---',
    `base_model: ${JSON.stringify(run.baseModel)}`,
    'library_name: transformers',
    'tags:',
    '- gradprune',
    '- layer-pruning',
    '- pruned',
    '---',
    '',
    `# ${run.baseModel}, pruned to ${plan.kept.length} of ${plan.numLayers} layers with GradPruner`,
    '',
    `This checkpoint is ${/^[\w.-]+\/[\w.-]+$/.test(run.baseModel) ? `[${run.baseModel}](https://huggingface.co/${run.baseModel})` : run.baseModel} with ${plan.pruned.length} decoder layer${plan.pruned.length === 1 ? '' : 's'} removed by`,
    `GradPruner ([${PAPER.title}](${PAPER.url}), ${PAPER.venue}), made with GradPrune Studio. It loads with`,
    '`AutoModelForCausalLM.from_pretrained` like the original; weights are stored in ' + dtype + '.',
    '',
    '## Method',
    '',
    'The first steps of LoRA fine-tuning on the task data give each layer an importance: the accumulated',
    'squared product of the clipped LoRA gradients, F = (1/t) Σ_s (∂L/∂B_s · ∂L/∂A_s)², summed over the layer.',
    `The lowest-scoring layers were removed (layer 0 is always kept). The weights of the ${plan.merged.length} highest-scoring`,
    `removed layer${plan.merged.length === 1 ? '' : 's'} were sparsified to their top ${Math.round(plan.keepFraction * 100)}% elements by F, and the elements whose sign`,
    'agrees with the receiving layer were added into the nearest kept layer below.',
    ...(stopped.stoppedEarly ? ['', `The scoring run was stopped early, after ${stopped.run} of its ${stopped.planned} planned steps: the scores come from those ${stopped.run} steps.`] : []),
    '',
    '## Settings',
    '',
    '| setting | value |',
    '|---|---|',
    ...settingRows(run),
    ...(run.data ? [`| data | ${run.data.fileName}${run.data.rows !== undefined ? ` (${run.data.rows} rows)` : ''} |`] : []),
    '',
    '## Plan',
    '',
    `- kept layers (renumbered 0..${plan.kept.length - 1}): ${plan.kept.join(', ')}`,
    `- merged: ${plan.merged.length ? plan.merged.map((p) => `${p} → ${plan.receiver[p]}`).join(', ') : 'none'}`,
    `- dropped: ${plan.dropped.length ? plan.dropped.join(', ') : 'none'}`,
    '',
    '| | before | after | saved |',
    '|---|---|---|---|',
    `| layers | ${before.layers} | ${after.layers} | ${pct(after.layers, before.layers)} |`,
    `| parameters | ${fmtInt(before.params)} | ${fmtInt(after.params)} | ${pct(after.params, before.params)} |`,
    `| weight memory (${dtype}) | ${fmtBytes(before.weightBytes)} | ${fmtBytes(after.weightBytes)} | ${pct(after.weightBytes, before.weightBytes)} |`,
    `| FLOPs / token (context ${plan.contextLength}) | ${fmtInt(before.flopsPerToken)} | ${fmtInt(after.flopsPerToken)} | ${pct(after.flopsPerToken, before.flopsPerToken)} |`,
    '',
    '## Layer scores',
    '',
    `| layer | score${run.scores.layerScoreCode ? ' | released-script score' : ''} | fate |`,
    `|---|---|${run.scores.layerScoreCode ? '---|' : ''}---|`,
    ...plan.fates.map((f, i) => {
      const fate = f.kind === 'kept' ? `kept as ${f.newIndex}` : f.kind === 'merged' ? `merged into ${f.into}` : 'dropped';
      const code = run.scores.layerScoreCode ? ` | ${run.scores.layerScoreCode[i].toExponential(4)}` : '';
      return `| ${i} | ${run.scores.layerScore[i].toExponential(4)}${code} | ${fate} |`;
    }),
    '',
  ];
  if (run.evaluation?.length) {
    lines.push('## Evaluation', '', '| metric | original | pruned |', '|---|---|---|');
    for (const e of run.evaluation) lines.push(`| ${e.metric} | ${e.before.toFixed(4)} | ${e.after.toFixed(4)} |`);
    lines.push('');
  }
  lines.push('`gradprune_recipe.json` records everything needed to reproduce this checkpoint.', '');
  return lines.join('\n');
}
