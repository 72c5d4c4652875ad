// The messages between the studio page and its worker. The page sends requests, each with an id; the worker
// answers with events: zero or more 'progress' events, then exactly one result event or one 'error' carrying
// that id. Events with requestId null are the worker's own news (the adapter at start-up, a lost device).
// Everything here is plain structured-clone data (Blobs travel by reference, not by copy).

import type { ColumnMapping, DatasetFormat, DatasetPreview, MultipleChoiceSchema, RejectedRow } from '../data';
import type { ErrorInfo } from '../errors';
import type { ComparisonRow } from '../eval/before-after';
import type { RecoverySettings } from '../eval/recovery';
import type { AdapterSummary } from '../gpu/device';
import type { ScoringSettings } from '../gradprune/pipeline';
import type { PrunePlan } from '../gradprune/plan';
import type { ModelConfig } from '../model/config';
import type { MemoryEstimate } from '../nn/memory';
import type { ResolvedPrecision, WeightPrecision } from '../nn/precision';
import type { DecayKind } from '../nn/schedule';
import type { FitReport, ModelSummary } from '../model/summary';

/** One file of a model folder, keyed by its bare file name (folders are flattened). */
export interface FileEntry {
  name: string;
  blob: Blob;
}

export type WorkerRequest =
  /** Ask for the adapter (again, e.g. after the device was lost). Answered by 'adapter'. */
  | { type: 'probeGpu' }
  /** Open a checkpoint from its files. Answered by 'modelLoaded'. The previous model is dropped first. */
  | { type: 'loadModel'; files: FileEntry[]; name: string }
  /** Forget the loaded model. Answered by 'modelUnloaded'. */
  | { type: 'unloadModel' }
  /** Read, tokenize, split and preview a dataset file for the loaded model. Answered by 'datasetLoaded'. */
  | { type: 'loadDataset'; file: Blob; fileName: string; options: DatasetOptions }
  /** Read the current dataset file again with another format, column mapping or split. Answered by 'datasetLoaded'. */
  | { type: 'setFormat'; options: DatasetOptions }
  /** The GPU memory a scoring run with these settings needs, and whether this adapter allows it. Answered by 'memoryEstimated'. */
  | { type: 'estimateMemory'; settings: ScoringSettings }
  /** Run GradPruner's scoring (the first LoRA steps). 'scoreStep' events while it runs; answered by 'scored'. */
  | { type: 'score'; settings: Partial<ScoringSettings> }
  /** Pause, resume or stop the running score or recovery (a stopped run still answers 'scored' / 'recovered' with the steps done). Answered by 'scoreControl'. */
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' }
  /** Merge and export the pruned checkpoint for a plan over the last scores. Answered by 'pruned'. */
  | { type: 'applyPrune'; plan: PlanChoice }
  /** Dense vs pruned on the held-out split, and side-by-side generations. Answered by 'evaluated'. */
  | { type: 'evaluate'; options: EvaluateOptions }
  /** Greedy generations of both models for given prompts (weights in the session's precision). Answered by 'generated'. */
  | ({ type: 'generate'; prompts: string[]; maxNewTokens: number } & Partial<JobSettings>)
  /** Recovery fine-tuning of the pruned model (a fresh LoRA), then dense / pruned / recovered measured side by side. 'recoverStep' events while it trains; answered by 'recovered'. */
  | { type: 'recover'; settings: RecoverSettings; evaluation: RecoverEvaluation }
  /**
   * The pruned checkpoint folder as files and as one zip. After a recovery run, `adapter` says how the adapter
   * comes along: merged into the weights (the default) or as a PEFT adapter folder (adapter/) beside the pruned
   * weights. `target` says where it goes: an in-memory zip (the default; small models), a folder picked with
   * showDirectoryPicker, or one zip streamed into a file picked with showSaveFilePicker. Answered by 'exported'.
   */
  | { type: 'exportZip'; adapter?: AdapterExport; target?: ExportTarget };

/** Where the worker writes the exported folder (File System Access handles pass through postMessage). */
export type ExportTarget =
  | { kind: 'memory' }
  | { kind: 'folder'; handle: FileSystemDirectoryHandle }
  | { kind: 'zipFile'; handle: FileSystemFileHandle };

/**
 * How every GPU job of the session holds its weights: the precision ('auto': f16 where the adapter has shader-f16)
 * and the GPU memory limit in bytes (null: what the adapter allows; over it, the decoder layers stream from host
 * memory). The page sends its scoring settings' values with Check, generation and Recover; absent means 'auto' and null.
 */
export interface JobSettings {
  weights: WeightPrecision;
  maxGpuMemory: number | null;
}

export type RequestType = WorkerRequest['type'];
export type RequestMessage = WorkerRequest & { id: number };

export interface AdapterEvent {
  type: 'adapter';
  requestId: number | null;
  /** null when the browser has no WebGPU or no adapter; `error` then says why and what to do. */
  adapter: AdapterSummary | null;
  error?: ErrorInfo;
}

export interface ModelLoadedEvent {
  type: 'modelLoaded';
  requestId: number;
  summary: ModelSummary;
  /** The normalised config (plans and memory estimates are computed from it in the page). */
  config: ModelConfig;
  /** null when there is no GPU to fit onto (the summary still stands). */
  fit: FitReport | null;
}

export interface ModelUnloadedEvent {
  type: 'modelUnloaded';
  requestId: number;
}

export interface ProgressEvent {
  type: 'progress';
  requestId: number;
  /** A short phrase for people: "Reading model.safetensors". */
  stage: string;
  /** Completed fraction in [0, 1] when known. */
  fraction?: number;
}

/** How a dataset file is read: format override and column mapping (absent: detected), tokenizing and split. */
export interface DatasetOptions {
  format?: DatasetFormat;
  columns?: ColumnMapping;
  multipleChoiceSchema?: MultipleChoiceSchema;
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

export interface ScoreStepEvent {
  type: 'scoreStep';
  requestId: number;
  /** 0-based index of the step just finished. */
  step: number;
  steps: number;
  /** Every finished step's loss so far. */
  losses: number[];
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
  etaSeconds: number;
  scores: ScoreSnapshot;
}

export interface MemoryEstimatedEvent {
  type: 'memoryEstimated';
  requestId: number;
  estimate: MemoryEstimate;
  /** Host memory for the per-step gradient factors a merge needs (the GPU holds only a small staging ring, counted in `estimate`). */
  igiaBytes: number;
  /** Why the run would not fit this adapter (null: it fits, or there is no adapter to check against). */
  problem: ErrorInfo | null;
  /** The GPU memory limit the estimate was checked against (the setting, or what the adapter allows); null without an adapter. */
  budget: number | null;
  /** What the adapter allows when no limit is set (WEIGHT_BUDGET_BUFFERS × maxBufferSize); null without an adapter. */
  adapterBudget: number | null;
}

export interface ScoredEvent {
  type: 'scored';
  requestId: number;
  scores: ScoreSnapshot;
  /** kendall[s]: Kendall τ-b of the ranking after step s vs the final one (NaN while the scores are all 0). */
  kendall: number[];
  losses: number[];
  /** True when the person stopped the run before the last step. */
  stopped: boolean;
  settings: ScoringSettings;
  elapsedSeconds: number;
  targetTokens: number;
}

export interface ScoreControlEvent {
  type: 'scoreControl';
  requestId: number;
  state: 'running' | 'paused' | 'stopping' | 'idle';
}

/** The person's pruning choice; the plan itself is makePlan(scores, config, …) on either side. */
export interface PlanChoice {
  prune: number;
  merge: number;
  keepFraction: number;
  protectLast: boolean;
  rankedBy: 'paper' | 'code';
}

export interface ExportedFile {
  name: string;
  bytes: number;
}

export interface PrunedEvent {
  type: 'pruned';
  requestId: number;
  plan: PrunePlan;
  /** Elements each merge added, "p->r.module". */
  addedElements: Record<string, number>;
  files: ExportedFile[];
  totalBytes: number;
}

export interface EvaluateOptions extends Partial<JobSettings> {
  /** At most this many held-out examples / multiple-choice items (keeps software GPUs quick). */
  maxExamples: number;
  /** Side-by-side generations: how many held-out prompts, how many new tokens. */
  generations: number;
  maxNewTokens: number;
}

export interface ModelEval {
  loss: number;
  perplexity: number;
  tokens: number;
  rows: number;
  /** Multiple-choice data only. */
  acc?: number;
  accNorm?: number;
  items?: number;
}

export interface GenerationRow {
  prompt: string;
  dense: string;
  pruned: string;
}

export interface EvaluatedEvent {
  type: 'evaluated';
  requestId: number;
  dense: ModelEval;
  pruned: ModelEval;
  /** dense and pruned side by side: parameters, weight memory, measured forward time per token, loss, accuracy. */
  table: ComparisonRow[];
  generations: GenerationRow[];
  /** The weight storage both models ran with, and why ("adapter has shader-f16"). */
  precision: ResolvedPrecision;
}

export interface GeneratedEvent {
  type: 'generated';
  requestId: number;
  generations: GenerationRow[];
}

export interface ExportedEvent {
  type: 'exported';
  requestId: number;
  /** The folder's name (and the zip's, with .zip). */
  folderName: string;
  /** Names are relative to the folder; a PEFT adapter's files are under "adapter/". Empty when written into a picked handle (nothing is kept in memory). */
  files: FileEntry[];
  /** How the recovery adapter came along (null: there was no recovery run). */
  adapter: AdapterExport | null;
  /** The zip in memory (target 'memory'); an empty Blob when the folder or zip was written into a picked handle. */
  zip: Blob;
  /** Where it was written for a picked handle ("<picked folder>/<folderName>" or the zip file's name); absent for memory. */
  savedTo?: string;
}

export interface DatasetLoadedEvent {
  type: 'datasetLoaded';
  requestId: number;
  dataset: DatasetInfo;
}

export interface DeviceLostEvent {
  type: 'deviceLost';
  requestId: null;
  error: ErrorInfo;
}

export interface ErrorEvent {
  type: 'error';
  /** The failed request, or null for a failure outside any request (a bug, reported rather than swallowed). */
  requestId: number | null;
  error: ErrorInfo;
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

export type AdapterExport = 'merged' | 'peft';

export interface RecoverStepEvent {
  type: 'recoverStep';
  requestId: number;
  /** 0-based index of the step just finished. */
  step: number;
  steps: number;
  /** Every finished step's loss so far. */
  losses: number[];
  lr: number;
  gradNorm: number;
  /** Passes over the training split so far. */
  epoch: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
  etaSeconds: number;
}

export interface RecoveredEvent {
  type: 'recovered';
  requestId: number;
  /** The engine's settings as run (defaults filled in, steps resolved from epochs). */
  settings: RecoverySettings;
  /** Steps trained (fewer than settings.steps when stopped). */
  steps: number;
  stopped: boolean;
  losses: number[];
  trainExamples: number;
  elapsedSeconds: number;
  /** Held-out loss and accuracy of the pruned model before and after (merged); null when nothing is held out. */
  before: ModelEval | null;
  after: ModelEval | null;
  /** dense, pruned, pruned + recovered (merged), measured one after the other on this device. */
  table: ComparisonRow[];
  /** What a separate PEFT adapter adds: parameters and bytes (f32). */
  adapterParameters: number;
  adapterBytes: number;
  /** The weight storage the training and all three measurements ran with, and why. */
  precision: ResolvedPrecision;
}

export type WorkerEvent =
  | AdapterEvent
  | ModelLoadedEvent
  | ModelUnloadedEvent
  | DatasetLoadedEvent
  | ScoreStepEvent
  | ScoredEvent
  | MemoryEstimatedEvent
  | ScoreControlEvent
  | PrunedEvent
  | EvaluatedEvent
  | GeneratedEvent
  | ExportedEvent
  | RecoverStepEvent
  | RecoveredEvent
  | ProgressEvent
  | DeviceLostEvent
  | ErrorEvent;

/** Which event completes which request. */
export interface ResultOf {
  probeGpu: AdapterEvent;
  loadModel: ModelLoadedEvent;
  unloadModel: ModelUnloadedEvent;
  loadDataset: DatasetLoadedEvent;
  setFormat: DatasetLoadedEvent;
  score: ScoredEvent;
  estimateMemory: MemoryEstimatedEvent;
  pause: ScoreControlEvent;
  resume: ScoreControlEvent;
  stop: ScoreControlEvent;
  applyPrune: PrunedEvent;
  evaluate: EvaluatedEvent;
  generate: GeneratedEvent;
  recover: RecoveredEvent;
  exportZip: ExportedEvent;
}

export const RESULT_EVENT_TYPE: { readonly [K in RequestType]: ResultOf[K]['type'] } = {
  probeGpu: 'adapter',
  loadModel: 'modelLoaded',
  unloadModel: 'modelUnloaded',
  loadDataset: 'datasetLoaded',
  setFormat: 'datasetLoaded',
  score: 'scored',
  estimateMemory: 'memoryEstimated',
  pause: 'scoreControl',
  resume: 'scoreControl',
  stop: 'scoreControl',
  applyPrune: 'pruned',
  evaluate: 'evaluated',
  generate: 'generated',
  recover: 'recovered',
  exportZip: 'exported',
};

const EVENT_TYPES = new Set<string>([
  'adapter', 'modelLoaded', 'modelUnloaded', 'datasetLoaded', 'scoreStep', 'scored', 'memoryEstimated', 'scoreControl', 'pruned', 'evaluated',
  'generated', 'exported', 'recoverStep', 'recovered', 'progress', 'deviceLost', 'error',
] satisfies WorkerEvent['type'][]);

/** Structured-clone-safe check that a message from the worker is an event we know. */
export function isWorkerEvent(data: unknown): data is WorkerEvent {
  if (typeof data !== 'object' || data === null) return false;
  const t = (data as { type?: unknown }).type;
  return typeof t === 'string' && EVENT_TYPES.has(t);
}
