// What an exported checkpoint says about its recovery fine-tuning: a model card section (appended to the pruned
// model's README.md) and the record written as gradprune_recovery.json. Plain data in, text out.

import type { ComparisonRow } from '../eval/before-after';
import type { AdapterExport, ResultBody } from './protocol';

export type RecoveryFacts = Pick<ResultBody<'recover'>, 'settings' | 'steps' | 'stopped' | 'losses' | 'trainExamples' | 'elapsedSeconds' | 'before' | 'after' | 'table'>;

const dash = '–';
const fixed = (x: number | null, digits: number) => (x === null ? dash : x.toFixed(digits));
const percent = (x: number | null) => (x === null ? dash : `${(100 * x).toFixed(1)}%`);
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 3 : 2)} MiB`;

/** The before / after rows as a Markdown table. */
export function comparisonMarkdown(rows: readonly ComparisonRow[]): string[] {
  const lines = [
    '| model | layers | parameters | weight memory | forward ms / token | held-out loss | perplexity | acc | acc_norm |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const speed = r.msPerToken === null ? dash : `${r.msPerToken.toFixed(4)}${r.speedup !== null && r !== rows[0] ? ` (${r.speedup.toFixed(2)}×)` : ''}`;
    lines.push(
      `| ${r.label} | ${r.layers} | ${r.parameters.toLocaleString('en-US')} (${(100 * r.parameterRatio).toFixed(1)}%) | ${mib(r.weightBytes)} | ${speed} | ` +
        `${fixed(r.heldOutLoss, 4)} | ${fixed(r.perplexity, 2)} | ${percent(r.acc)} | ${percent(r.accNorm)} |`,
    );
  }
  return lines;
}

/** "## Recovery fine-tuning": what was trained, how the adapter is shipped, and the before / after table. */
export function recoveryCardSection(r: RecoveryFacts, adapter: AdapterExport, dataFile: string): string {
  const s = r.settings;
  const how =
    adapter === 'merged'
      ? `The adapter is merged into the weights (W + (alpha/r)·B·A, stored in the checkpoint's dtype): this folder loads with \`AutoModelForCausalLM.from_pretrained\` and needs no PEFT.`
      : 'The adapter is kept apart, in PEFT\'s layout, in `adapter/`: load this folder with `AutoModelForCausalLM.from_pretrained`, then ' +
        '`PeftModel.from_pretrained(model, "adapter")` (or `model.load_adapter("adapter")`).';
  const lines = [
    '## Recovery fine-tuning',
    '',
    `After pruning, a fresh LoRA (rank ${s.rank}, alpha ${s.alpha}, on ${s.modules.join(', ')}) was trained for ${r.steps} step${r.steps === 1 ? '' : 's'}` +
      `${r.stopped ? ` (stopped early; ${s.steps} were planned)` : ''} on the ${r.trainExamples} training examples of ${dataFile}: ` +
      `AdamW, lr ${s.lr} with ${s.warmupSteps} warmup step${s.warmupSteps === 1 ? '' : 's'} and ${s.schedule} decay, weight decay ${s.weightDecay}, ` +
      `batches of ${s.batchSize} × ${s.seqLen} tokens.`,
    how,
    '',
  ];
  if (r.before && r.after) {
    lines.push(
      `Held-out loss ${r.before.loss.toFixed(4)} → ${r.after.loss.toFixed(4)} (perplexity ${r.before.perplexity.toFixed(2)} → ${r.after.perplexity.toFixed(2)}) ` +
        `over ${r.after.rows} held-out examples${r.after.acc !== undefined && r.before.acc !== undefined ? `; accuracy ${percent(r.before.acc)} → ${percent(r.after.acc)} over ${r.after.items} questions` : ''}.`,
      '',
    );
  }
  lines.push(...comparisonMarkdown(r.table), '', 'Forward time per token was measured in one run on the GPU of the machine that made this checkpoint.', '');
  return lines.join('\n');
}

/** gradprune_recovery.json: the run's settings, curve and numbers. */
export function recoveryRecord(r: RecoveryFacts, adapter: AdapterExport, baseModel: string, data: { fileName: string; rows: number }): Record<string, unknown> {
  return {
    kind: 'gradprune-recovery',
    baseModel,
    data: { ...data, train: r.trainExamples, heldOut: r.after?.rows ?? 0 },
    settings: r.settings,
    steps: r.steps,
    stopped: r.stopped,
    elapsedSeconds: r.elapsedSeconds,
    heldOutLossBefore: r.before?.loss ?? null,
    heldOutLossAfter: r.after?.loss ?? null,
    accuracyBefore: r.before?.acc ?? null,
    accuracyAfter: r.after?.acc ?? null,
    losses: r.losses,
    table: r.table,
    merged: adapter === 'merged',
  };
}
