// The plain data that requests and events carry between the studio page and its worker (./protocol.ts says which
// request carries what, and which event answers it). Everything here is structured-clone data.

import type { ColumnMapping, DatasetFormat, DatasetPreview, MultipleChoiceSchema, RejectedRow } from '../data';
import type { WeightPrecision } from '../nn/precision';
import type { DecayKind } from '../nn/schedule';
import type { ImportanceCost, ImportanceMethodId, LayerBlock } from '../gradprune/importance/method';

/** One file of a model folder, keyed by its bare file name (folders are flattened). */
export interface FileEntry {
  name: string;
  blob: Blob;
}

/**
 * How every GPU job of the session holds its weights: the precision ('auto': f16 where the adapter has shader-f16)
 * and the GPU memory limit in bytes (null: what the adapter allows; over it, the decoder layers stream from host
 * memory). The page sends its scoring settings' values with Check, generation and Recover; absent means 'auto' and null.
 */
export interface JobSettings {
  weights: WeightPrecision;
  maxGpuMemory: number | null;
}

/** How a dataset file is read: format override and column mapping (absent: detected), tokenizing and split. */
export interface DatasetOptions {
  format?: DatasetFormat;
  columns?: ColumnMapping;
  multipleChoiceSchema?: MultipleChoiceSchema;
  /** The prompt template ({column} placeholders, the last one the target; absent: the format's default). */
  template?: string;
  /** Append EOS to every target (absent: on, off for classification labels). */
  appendEos?: boolean;
  maxSeqLen: number;
  /** Fraction (0..1) or count of examples held out for the Check step. */
  heldOut: number;
  seed: number;
}

export interface DatasetInfo {
  fileName: string;
  bytes: number;
  format: DatasetFormat;
  multipleChoiceSchema: MultipleChoiceSchema | null;
  /** "columns query, choices, gold" or "set by you". */
  detectedFrom: string;
  columns: string[];
  mapping: ColumnMapping;
  totalRows: number;
  examples: number;
  train: number;
  heldOut: number;
  /** Multiple-choice items in the held-out split (accuracy is measured on them). */
  heldOutChoiceItems: number;
  rejectedCount: number;
  rejected: RejectedRow[];
  preview: DatasetPreview;
  options: DatasetOptions;
  /** The prompt template in force (null: the format's layout is fixed), whether it is the default, and the EOS setting. */
  template: string | null;
  templateIsDefault: boolean;
  appendEos: boolean;
  /** SHA-256 of the file's bytes (32 hex digits): what the studio ties saved scores and runs to, with the model's. */
  fingerprint: string;
}

/** Importance so far: the paper's score (Σ F), split by module, and the released code's Σ‖S‖_F. */
export interface ScoreSnapshot {
  /** Steps the scores are from. */
  steps: number;
  layerScores: number[];
  /** [layer][module], LINEAR_MODULES order. */
  moduleScores: number[][];
  layerScoresCode: number[];
}

/** The person's pruning choice; the plan itself is makePlan(scores, config, …) on either side. */
export interface PlanChoice {
  prune: number;
  merge: number;
  keepFraction: number;
  protectLast: boolean;
  /**
   * What ranks the layers: 'paper' / 'code' are IGIA (Σ F) and the released script's Σ‖S‖_F (importance ids 'igia',
   * 'igia-code'); the others are importance methods from the scoring run (MethodRanking): their plans never merge.
   */
  rankedBy: PlanRankedBy;
}

/** The rankings a plan can use in the studio (Taylor needs a gradient pass of its own: the CLI's compare has it). */
export type PlanRankedBy = 'paper' | 'code' | 'bi' | 'angular' | 'magnitude' | 'last';

/** One importance method's layer ranking, computed after the scoring run (higher = keep). */
export interface MethodRanking {
  method: ImportanceMethodId;
  /** The PlanChoice.rankedBy that applies this method's plan. */
  rankedBy: PlanRankedBy;
  title: string;
  reference: string;
  /** The layer scores, when they do not depend on N (igia, igia-code, bi, magnitude). */
  layerScores?: number[];
  /** Methods whose layers depend on N (last, angular): the scores for each N computed; angular only up to a bound. */
  byPrune?: { prune: number; layerScores: number[]; block?: LayerBlock }[];
  cost: ImportanceCost;
}

export interface ExportedFile {
  name: string;
  bytes: number;
}

export interface EvaluateOptions extends Partial<JobSettings> {
  /** At most this many held-out examples / multiple-choice items (keeps software GPUs quick). */
  maxExamples: number;
  /** Side-by-side generations: how many held-out prompts, how many new tokens. */
  generations: number;
  maxNewTokens: number;
  /**
   * Also answer every held-out prompt greedily with both models and score exact match against its label (up to the
   * label's tokens + a margin, stopping at EOS). Off when absent.
   */
  exactMatch?: boolean;
}

/** A model's held-out numbers. */
export interface ModelEval {
  loss: number;
  perplexity: number;
  tokens: number;
  rows: number;
  /** Multiple-choice data only. */
  acc?: number;
  accNorm?: number;
  items?: number;
  /** With exact match: the share of answers equal to the label (trimmed), after normalising, and how many were answered. */
  exactMatch?: number;
  normalizedExactMatch?: number;
  answered?: number;
}

/** One held-out prompt answered by both models, with its label and whether each answer matches it. */
export interface AnswerPair {
  where: string;
  prompt: string;
  label: string;
  dense: string;
  pruned: string;
  denseMatch: boolean;
  prunedMatch: boolean;
  denseNormalizedMatch: boolean;
  prunedNormalizedMatch: boolean;
}

/** The Check's exact match: every answered prompt, and the held-out rows that have no prompt and label. */
export interface ExactMatchView {
  rows: AnswerPair[];
  skipped: number;
  /** New tokens beyond each label's length (0 where targets carry no EOS). */
  margin: number;
}

export interface GenerationRow {
  prompt: string;
  dense: string;
  pruned: string;
}

/** Recovery fine-tuning as the page chooses it; the rest is the paper's (AdamW wd 0.1, clip 1, warmup 3%, seed 0). */
export interface RecoverSettings extends Partial<JobSettings> {
  /** Whether the run's length is given in steps or in passes over the training split. */
  by: 'steps' | 'epochs';
  steps: number;
  epochs: number;
  rank: number;
  alpha: number;
  lr: number;
  batchSize: number;
  /** Tokens per row (the dataset is tokenized again for it when it differs). */
  seqLen: number;
  schedule: DecayKind;
}

export interface RecoverEvaluation {
  /** At most this many held-out examples for the before / after table (the Check's own cap). */
  maxExamples: number;
}

/** How a recovery adapter comes along in the export: merged into the weights, or as a PEFT adapter folder. */
export type AdapterExport = 'merged' | 'peft';

/**
 * What the exported folder is for: a Hugging Face checkpoint (safetensors, for transformers and PEFT), or the folder
 * transformers.js opens (onnx/model.onnx fp32 and onnx/model_fp16.onnx; a recovery adapter always merged).
 */
export type FolderFormat = 'safetensors' | 'onnx';

/** Where the worker writes the exported folder (File System Access handles pass through postMessage). */
export type ExportTarget =
  | { kind: 'memory' }
  /** overwrite: replace an existing <picked>/<folder name> (the person said so), keeping the old files until the new ones are complete. */
  | { kind: 'folder'; handle: FileSystemDirectoryHandle; overwrite?: boolean }
  | { kind: 'zipFile'; handle: FileSystemFileHandle };

/** An interrupted training run kept in the worker's storage (OPFS), that the page may offer to continue. */
export interface SavedRunInfo {
  kind: 'scoring' | 'recovery';
  /** Steps done: the continued run trains step `step` (0-based) next. */
  step: number;
  steps: number;
  modelName: string;
  datasetName: string;
  /** Date.now() when the snapshot was written. */
  savedAt: number;
}

/** The Check's comparison of several methods' plans: which methods, which N, on how many held-out rows. */
export interface EvaluatePlansOptions extends Partial<JobSettings> {
  methods: ImportanceMethodId[];
  /** The N (layers removed) of each method's plan. */
  counts: number[];
  /** At most this many held-out examples (the Check's cap). */
  maxExamples: number;
}

/** One model of the comparison measured on the held-out rows: the dense one, or a method's plan for N. */
export interface PlanEvaluation {
  /** null for the dense model. */
  method: ImportanceMethodId | null;
  title: string;
  /** Layers removed (0: dense) and which (original indices, ascending). */
  prune: number;
  pruned: number[];
  params: number;
  /** Share of the dense model's parameters removed, in [0, 1]. */
  removedFraction: number;
  loss: number | null;
  perplexity: number | null;
  /** Multiple-choice data only. */
  acc?: number;
  accNorm?: number;
}
