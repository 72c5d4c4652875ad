// GradPruner's importance as the scoring run gives it (../igia.ts, ../pipeline.ts), nothing recomputed:
//   'igia'       the paper's score, Σ over the elements of F = (1/t) Σ_s ‖S_s‖²_F per layer;
//   'igia-code'  the authors' released script's score, Σ_s ‖S_s‖_F per layer.
// Their cost is the scoring run's: its time and the IGIA buffers (GPU staging ring, host factors).

import { igiaMemory } from '../igia';
import { scoringRunOf } from './common';
import type { ImportanceMethod, ImportanceMethodId, LayerImportance, ScoringRun } from './method';

function igiaCost(run: ScoringRun, numLayers: number, config: Parameters<typeof igiaMemory>[0]): LayerImportance['cost'] {
  const { gpuBytes, hostBytes } = igiaMemory(config, run.settings.modules, run.settings.rank, run.steps);
  return { seconds: run.elapsedSeconds, gpuBytes, hostBytes, note: `the scoring run itself: ${run.steps} LoRA steps with IGIA over ${numLayers} layers` };
}

function igiaMethod(id: ImportanceMethodId, title: string, reference: string, scoresOf: (run: ScoringRun) => number[]): ImportanceMethod {
  return {
    id,
    title,
    reference,
    source: 'scoring',
    async compute(ctx) {
      const run = scoringRunOf(id, ctx);
      const { config } = ctx.model;
      return { method: id, layerScores: [...scoresOf(run)], cost: igiaCost(run, config.numLayers, config) };
    },
  };
}

export const igia = igiaMethod('igia', 'GradPruner (IGIA, Σ F)', 'GradPruner, arXiv 2601.19503', (run) => run.layerScores);
export const igiaCode = igiaMethod('igia-code', 'GradPruner, released code (Σ ‖S‖_F)', "GradPruner's released scoring script", (run) => run.layerScoresCode);
