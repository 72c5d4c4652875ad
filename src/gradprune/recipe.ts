// gradprune_recipe.json: everything needed to reproduce a pruned checkpoint — the model (name, config hash),
// the data (file name, hash), the settings and seed, the scores, and the plan.

import type { PrunePlan } from './plan';
import type { RankBy } from './ranking';

export const PAPER = {
  title: 'GradPruner: Gradient-guided layer pruning enabling efficient fine-tuning and inference for LLMs',
  arxiv: '2601.19503',
  venue: 'ICLR 2026',
  url: 'https://arxiv.org/abs/2601.19503',
} as const;

export interface PruneRunInfo {
  /** The base model's name (Hub id or folder name). */
  baseModel: string;
  /** Scoring settings: LoRA rank and alpha, steps, learning rate, batch, sequence length, … */
  settings: Record<string, unknown>;
  seed?: number;
  /** Scoring steps actually run: fewer than settings.steps when the run was stopped early (undefined: as planned). */
  stepsRun?: number;
  /** The data file; `format`, `template` (null: a fixed layout) and `appendEos` say how its rows were read. */
  data?: { fileName: string; sha256?: string; rows?: number; format?: string; template?: string | null; appendEos?: boolean };
  scores: {
    /** The paper's score per layer (Σ of F). */
    layerScore: number[];
    /** [layer][module] in q, k, v, o, gate, up, down order. */
    moduleScore?: number[][];
    /** The released script's score per layer. */
    layerScoreCode?: number[];
    /** Which score the plan ranked by (default "paper"; another importance method's id: its scores are rankedScore). */
    rankedBy?: RankBy;
    /** The scores of the method it ranked by, when that is not IGIA (higher = keep). */
    rankedScore?: number[];
  };
  /** Elements each merge added, "p->r.module" → count. */
  addedElements?: Record<string, number>;
  evaluation?: { metric: string; before: number; after: number }[];
  /** ISO date of the run, when the caller wants one recorded. */
  createdAt?: string;
}

export function planSummary(plan: PrunePlan) {
  return {
    num_layers_before: plan.numLayers,
    num_layers_after: plan.kept.length,
    pruned_layers: plan.pruned,
    merged_layers: plan.merged,
    dropped_layers: plan.dropped,
    kept_layers: plan.kept,
    receiver: plan.receiver,
    keep_fraction: plan.keepFraction,
    protect_last: plan.protectLast,
    params_before: plan.before.params,
    params_after: plan.after.params,
    weight_bytes_before: plan.before.weightBytes,
    weight_bytes_after: plan.after.weightBytes,
    flops_per_token_before: plan.before.flopsPerToken,
    flops_per_token_after: plan.after.flopsPerToken,
    flops_context_length: plan.contextLength,
  };
}

/** How far the scoring run went: the steps it trained, and the ones it planned when it was stopped before them. */
export function scoringSteps(run: Pick<PruneRunInfo, 'settings' | 'stepsRun'>): { run: number | null; planned: number | null; stoppedEarly: boolean } {
  const planned = typeof run.settings.steps === 'number' ? run.settings.steps : null;
  const steps = run.stepsRun ?? planned;
  return { run: steps, planned, stoppedEarly: steps !== null && planned !== null && steps < planned };
}

/** The run's settings as they ran: `steps` is the steps trained, with `planned_steps` beside it when the run was stopped early. */
export function settingsAsRun(run: Pick<PruneRunInfo, 'settings' | 'stepsRun'>): Record<string, unknown> {
  const steps = scoringSteps(run);
  return steps.stoppedEarly ? { ...run.settings, steps: steps.run, planned_steps: steps.planned } : run.settings;
}

export function buildRecipe(run: PruneRunInfo, plan: PrunePlan, configSha256: string, dtype: string) {
  return {
    format: 'gradprune-recipe',
    version: 1,
    tool: 'GradPrune Studio',
    method: { name: 'GradPruner', paper: PAPER },
    ...(run.createdAt ? { created_at: run.createdAt } : {}),
    model: { name: run.baseModel, config_sha256: configSha256, dtype, num_hidden_layers: plan.numLayers },
    data: run.data
      ? {
          file: run.data.fileName,
          sha256: run.data.sha256 ?? null,
          rows: run.data.rows ?? null,
          ...(run.data.format !== undefined ? { format: run.data.format, template: run.data.template ?? null, append_eos: run.data.appendEos ?? null } : {}),
        }
      : null,
    settings: settingsAsRun(run),
    stopped_early: scoringSteps(run).stoppedEarly,
    seed: run.seed ?? null,
    scores: {
      ranked_by: run.scores.rankedBy ?? 'paper',
      ...(run.scores.rankedScore ? { ranked_score: run.scores.rankedScore } : {}),
      layer_score: run.scores.layerScore,
      module_score: run.scores.moduleScore ?? null,
      layer_score_code: run.scores.layerScoreCode ?? null,
      module_order: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    },
    plan: { ...planSummary(plan), merged_elements: run.addedElements ?? null },
    evaluation: run.evaluation ?? null,
  };
}
