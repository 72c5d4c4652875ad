// The interface every layer-importance method follows: a model (and, for most, the scoring run's data) → one score
// per decoder layer, higher = keep, so that plan.ts's makePlan prunes the lowest — plus what the method cost.
// Methods differ in what they read (ImportanceSource):
//   'weights'   the checkpoint alone, no data (magnitude, last);
//   'scoring'   statistics the scoring run gathered in its own steps, no pass of their own (igia, igia-code, bi,
//               angular); what a run must gather is asked beforehand through `hiddenStatePairs`;
//   'gradients' a pass of their own over the scoring batches (taylor: frozen-weight gradients).
// One module per method in this folder; ./index.ts lists them by id.

import type { Gpu } from '../../gpu/device';
import type { ModelConfig } from '../../model/config';
import type { TensorStore } from '../../model/safetensors';
import type { HiddenStatePair, HiddenStateStats } from '../../nn/hidden-stats';
import type { ScoringSettings } from '../../nn/run-settings';
import type { ScoringData, ScoringResult } from '../pipeline';
import type { ImportanceMethodId } from '../ranking';

export type { HiddenStatePair, HiddenStateStats } from '../../nn/hidden-stats';

export type { ImportanceMethodId } from '../ranking';

export type ImportanceSource = 'weights' | 'scoring' | 'gradients';

/** A method's cost beyond loading the model (and, for 'scoring' methods, beyond the LoRA steps themselves). */
export interface ImportanceCost {
  /** Wall-clock seconds of the method's own work (for 'scoring' methods: its measured share of the run). */
  seconds: number;
  /** Extra GPU bytes it allocated (beside the model's weights and the run's job). */
  gpuBytes: number;
  /** Extra host bytes it held. */
  hostBytes: number;
  /** How the figures were obtained, in a sentence (e.g. "share of the scoring run: 2 kernels per pass"). */
  note?: string;
}

/** A contiguous block of layers a method removes as one (angular distance). */
export interface LayerBlock {
  /** First layer of the block and how many layers it has: layers start .. start + size − 1. */
  start: number;
  size: number;
  /** The method's distance for the block (angular: mean arccos(cos(h_start, h_start+size)) / π). */
  distance: number;
}

export interface LayerImportance {
  method: ImportanceMethodId;
  /** One score per decoder layer, higher = more important (keep). */
  layerScores: number[];
  cost: ImportanceCost;
  /** Angular distance: the block its scores make makePlan remove. */
  block?: LayerBlock;
}

/** The scoring run as methods read it: its result and, when asked for, the hidden-state statistics. */
export type ScoringRun = ScoringResult & { hiddenStates?: HiddenStateStats };

/** What a method is given. Fields a method's source does not need may be absent. */
export interface ImportanceContext {
  model: { config: ModelConfig; store: TensorStore };
  /** N: the number of layers the plan will remove ('last' and 'angular' choose their layers from it). */
  prune: number;
  /** 'scoring' methods: the finished scoring run. */
  scoring?: ScoringRun;
  /** 'gradients' methods: the device, the scoring data and settings (same batches, seed and split as the scoring run). */
  gpu?: Gpu;
  data?: ScoringData;
  settings?: Partial<ScoringSettings>;
  signal?: AbortSignal;
}

export interface ImportanceMethod {
  id: ImportanceMethodId;
  /** A short name for tables ("Block Influence"). */
  title: string;
  /** Where it comes from (paper, arXiv id). */
  reference: string;
  source: ImportanceSource;
  /** 'scoring' methods that read hidden states: the pairs the scoring run must gather for N = prune. */
  hiddenStatePairs?: (numLayers: number, prune: number) => HiddenStatePair[];
  /** The scores. Bad input (a missing scoring run, N out of range) is a GradPruneError('input') saying what to do. */
  compute(ctx: ImportanceContext): Promise<LayerImportance>;
}
