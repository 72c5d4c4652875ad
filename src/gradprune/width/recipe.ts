// What a width-pruned folder says about itself: gradprune_recipe.json (the method, the settings, the widths and
// which heads / channels each layer kept) and the model card (README.md).

import type { LayerWidths, WidthPlan } from './plan';
import type { GroupReduction, ImportanceKind } from './importance';

export const LLM_PRUNER = {
  title: 'LLM-Pruner: On the Structural Pruning of Large Language Models',
  arxiv: '2305.11627',
  venue: 'NeurIPS 2023',
  url: 'https://arxiv.org/abs/2305.11627',
} as const;

export interface WidthRunInfo {
  /** The base model's name (Hub id or folder name). */
  baseModel: string;
  importance: ImportanceKind;
  reduction: GroupReduction;
  /** The seed of the random importance, or of the Taylor importances' example draw. */
  seed: number | null;
  /** The task data the Taylor importances' gradients were taken on. */
  data?: { fileName: string; sha256: string; examples: number; seqLen: number } | null;
  createdAt?: string;
}

const widthsJson = (w: LayerWidths) => ({ num_attention_heads: w.heads, num_key_value_heads: w.kvHeads, intermediate_size: w.intermediate });

export function widthPlanSummary(plan: WidthPlan) {
  return {
    mode: plan.mode,
    loadable_by_transformers: true,
    pruned_layers: plan.layers.map((_, l) => l),
    target_ratio_of_all_parameters: plan.targetRatio,
    head_dim_stated: plan.headDimStated,
    widths_before: widthsJson(plan.widthsBefore),
    widths_after: widthsJson(plan.widthsAfter),
    removed_kv_heads_per_layer: plan.removedKvHeads,
    removed_channels_per_layer: plan.removedChannels,
    kept_kv_heads: plan.layers.map((l) => l.keptKvHeads),
    kept_channels: plan.layers.map((l) => l.keptChannels),
    params_before: plan.before.params,
    params_after: plan.after.params,
    weight_bytes_before: plan.before.weightBytes,
    weight_bytes_after: plan.after.weightBytes,
    flops_per_token_before: plan.before.flopsPerToken,
    flops_per_token_after: plan.after.flopsPerToken,
    flops_context_length: 512,
  };
}

export function buildWidthRecipe(run: WidthRunInfo, plan: WidthPlan, configSha256: string, dtype: string) {
  return {
    format: 'gradprune-recipe',
    version: 1,
    tool: 'GradPrune Studio',
    method: { name: 'LLM-Pruner (width, uniform)', paper: LLM_PRUNER },
    ...(run.createdAt ? { created_at: run.createdAt } : {}),
    model: { name: run.baseModel, config_sha256: configSha256, dtype, num_hidden_layers: plan.numLayers },
    data: run.data ? { file: run.data.fileName, sha256: run.data.sha256 } : null,
    settings: { importance: run.importance, group_reduction: run.reduction, ...(run.data ? { examples: run.data.examples, seq_len: run.data.seqLen, batch_size: 1 } : {}) },
    seed: run.seed,
    plan: widthPlanSummary(plan),
  };
}

const fmtInt = (n: number) => n.toLocaleString('en-US');
const pct = (after: number, before: number) => `${(100 * (1 - after / before)).toFixed(1)}%`;

export function widthModelCard(run: WidthRunInfo, plan: WidthPlan, dtype: string): string {
  const { before, after, widthsBefore: wb, widthsAfter: wa } = plan;
  return [
    '---',
    `base_model: ${JSON.stringify(run.baseModel)}`,
    'library_name: transformers',
    'tags:',
    '- gradprune',
    '- width-pruning',
    '- llm-pruner',
    '- pruned',
    '---',
    '',
    `# ${run.baseModel}, width-pruned in the LLM-Pruner style`,
    '',
    `Every decoder layer lost ${plan.removedKvHeads} key/value head${plan.removedKvHeads === 1 ? '' : 's'} (each with the query heads that share it) and`,
    `${plan.removedChannels} MLP channel${plan.removedChannels === 1 ? '' : 's'}, the lowest-scoring by ${run.importance} importance (group reduction: ${run.reduction}), following`,
    `[${LLM_PRUNER.title}](${LLM_PRUNER.url}) (${LLM_PRUNER.venue}); made with GradPrune Studio. The widths are the same in`,
    'every layer, so it loads with `AutoModelForCausalLM.from_pretrained` like the original; weights are stored in ' + dtype + '.',
    'It has not been recovered (fine-tuned) after pruning.',
    ...(plan.headDimStated ? ['', `config.json now states \`head_dim\` (${String(plan.config.head_dim)}): hidden_size / num_attention_heads no longer gives it.`] : []),
    '',
    '| | before | after | saved |',
    '|---|---|---|---|',
    `| attention heads / kv heads per layer | ${wb.heads} / ${wb.kvHeads} | ${wa.heads} / ${wa.kvHeads} | ${pct(wa.heads, wb.heads)} |`,
    `| intermediate size | ${wb.intermediate} | ${wa.intermediate} | ${pct(wa.intermediate, wb.intermediate)} |`,
    `| parameters | ${fmtInt(before.params)} | ${fmtInt(after.params)} | ${pct(after.params, before.params)} |`,
    `| FLOPs / token (context 512) | ${fmtInt(before.flopsPerToken)} | ${fmtInt(after.flopsPerToken)} | ${pct(after.flopsPerToken, before.flopsPerToken)} |`,
    '',
    '`gradprune_recipe.json` lists the heads and channels each layer kept.',
    '',
  ].join('\n');
}
