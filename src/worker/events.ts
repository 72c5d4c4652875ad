// The worker's events: what answers each request (./protocol.ts pairs them), and the news it posts unasked
// (progress, steps, a lost device, errors).

import type { ErrorInfo } from '../errors';
import type { GgufDType } from '../export/gguf/gguf';
import type { ComparisonRow } from '../eval/before-after';
import type { RecoverySettings } from '../nn/run-settings';
import type { AdapterSummary } from '../gpu/device';
import type { ScoringSettings } from '../nn/run-settings';
import type { PrunePlan } from '../gradprune/plan';
import type { ModelConfig } from '../model/config';
import type { FitReport, ModelSummary } from '../model/summary';
import type { MemoryEstimate } from '../nn/memory';
import type { ResolvedPrecision } from '../nn/precision';
import type {
  AdapterExport,
  DatasetInfo,
  ExactMatchView,
  FileEntry,
  GenerationRow,
  MethodRanking,
  ModelEval,
  PlanEvaluation,
  SavedRunInfo,
  ScoreSnapshot,
  ExportedFile,
} from './messages';

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
  /** model/fingerprint.ts modelFingerprint: what the studio ties saved settings, scores and runs to. */
  fingerprint: string;
}

export interface ModelUnloadedEvent {
  type: 'modelUnloaded';
  requestId: number;
}

export interface DatasetLoadedEvent {
  type: 'datasetLoaded';
  requestId: number;
  dataset: DatasetInfo;
}

export interface ProbedEvent {
  type: 'probed';
  requestId: number;
  /** Seconds of one steady step at these settings on this GPU (null: the probe was stopped before it knew). */
  stepSeconds: number | null;
  /** Seconds a run pays once beyond its steps (shader compilation, first use of the weights). */
  oneTimeSeconds: number | null;
  /** What the probe itself took (the weights' upload included, which the run that follows reuses). */
  probeSeconds: number;
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

/** One finished step of a training run (scoring or recovery), as the page draws it live. */
export interface RunStep {
  requestId: number;
  /** 0-based index of the step just finished. */
  step: number;
  steps: number;
  /** Every finished step's loss so far. */
  losses: number[];
  lr: number;
  gradNorm: number;
  /** Real tokens per second of training (pauses left out; after the first step's one-time costs once there is a second). */
  tokensPerSecond: number;
  /** Wall-clock seconds since the run started (pauses included). */
  elapsedSeconds: number;
  /** Seconds of training left; null while estimating (before a step after the first has ended). */
  etaSeconds: number | null;
  /** Seconds per step without the one-time costs (null until known). */
  stepSeconds?: number | null;
}

/** A scoring step, with the importance so far. */
export interface ScoreStepEvent extends RunStep {
  type: 'scoreStep';
  scores: ScoreSnapshot;
}

/** A recovery step, with the passes over the training split so far. */
export interface RecoverStepEvent extends RunStep {
  type: 'recoverStep';
  epoch: number;
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
  /** Every studio importance method's ranking from this run (absent in scores saved before there were any). */
  rankings?: MethodRanking[];
}

export interface SavedRunEvent {
  type: 'savedRun';
  requestId: number;
  run: SavedRunInfo | null;
}

export interface ScoreControlEvent {
  type: 'scoreControl';
  requestId: number;
  state: 'running' | 'paused' | 'stopping' | 'idle';
  /**
   * After a pause or stop: the steps the run has when it holds or ends (a step in flight finishes; streamed weights
   * may drop a stopped one).
   */
  holdsAfter?: number | null;
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

export interface EvaluatedEvent {
  type: 'evaluated';
  requestId: number;
  dense: ModelEval;
  pruned: ModelEval;
  /** dense and pruned side by side: parameters, weight memory, measured forward time per token, loss, accuracy. */
  table: ComparisonRow[];
  generations: GenerationRow[];
  /** With options.exactMatch: every held-out prompt answered by both models (null: not asked). */
  exactMatch: ExactMatchView | null;
  /** The weight storage both models ran with, and why ("adapter has shader-f16"). */
  precision: ResolvedPrecision;
}

export interface PlansEvaluatedEvent {
  type: 'plansEvaluated';
  requestId: number;
  /** The dense model first, then each method's plan for each N (the request's order). */
  plans: PlanEvaluation[];
  /** Held-out rows measured on, and multiple-choice items among them (0: accuracy is not measured). */
  rows: number;
  items: number;
}

export interface GeneratedEvent {
  type: 'generated';
  requestId: number;
  generations: GenerationRow[];
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
  /** Said when the files went somewhere else than asked (a fresh folder beside one that could not be replaced in place). */
  note?: string;
}

export interface ExportFilesEvent {
  type: 'exportFiles';
  requestId: number;
  folderName: string;
  adapter: AdapterExport | null;
  files: ExportedFile[];
  totalBytes: number;
}

export interface OnnxTriedEvent {
  type: 'onnxTried';
  requestId: number;
  prompt: string;
  /** onnxruntime-web's greedy continuation of the exported graph, and our engine's (new text only). */
  onnx: string;
  engine: string;
  /** Whether both chose the same tokens. */
  same: boolean;
  /** onnxruntime-web's generation time, and the fp32 model's size. */
  onnxSeconds: number;
  modelBytes: number;
  /** The transformers.js folder (config, tokenizer, onnx/model.onnx) as one zip, and its name. */
  folderName: string;
  zip: Blob;
}

/** Where a GGUF download goes: a Blob in memory (small models), or a file picked with showSaveFilePicker. */
export type GgufTarget = { kind: 'memory' } | { kind: 'file'; handle: FileSystemFileHandle };

export interface GgufSizesEvent {
  type: 'ggufSizes';
  requestId: number;
  options: { dtype: GgufDType; fileName: string; bytes: number }[];
  /** Why the model cannot be written as GGUF (then options is empty), else null. */
  refused: string | null;
}

export interface GgufExportedEvent {
  type: 'ggufExported';
  requestId: number;
  fileName: string;
  dtype: GgufDType;
  /** The file (target 'memory'); empty when it was written into a picked file. */
  blob: Blob;
  /** The picked file's name, when written there. */
  savedTo?: string;
}

export interface ProgressEvent {
  type: 'progress';
  requestId: number;
  /** A short phrase for people: "Reading model.safetensors". */
  stage: string;
  /** Completed fraction in [0, 1] when known. */
  fraction?: number;
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

/** What the worker says besides results: progress, a run's steps, a lost device, an error. */
export type NewsEvent = ProgressEvent | ScoreStepEvent | RecoverStepEvent | DeviceLostEvent | ErrorEvent;
