// The studio's state as slices, in pipeline order after what the whole session shares (the GPU, the running job, a
// notice). Each slice is a creator of its starting state. A step holds its person's choices (settings, plan,
// options), which outlive a reset, and its results, which the empty* creators below start afresh.

import type { ErrorInfo } from '../errors';
import type { AdapterSummary } from '../gpu/device';
import type { ScoringSettings } from '../nn/run-settings';
import type { ModelConfig } from '../model/config';
import type { ImportanceMethodId } from '../gradprune/importance/method';
import type { FitReport, ModelSummary } from '../model/summary';
import type {
  AdapterExport,
  FolderFormat,
  DatasetInfo,
  EvaluatedEvent,
  EvaluateOptions,
  ExportedEvent,
  GenerationRow,
  MemoryEstimatedEvent,
  PlanChoice,
  PlansEvaluatedEvent,
  PrunedEvent,
  RecoveredEvent,
  RecoverSettings,
  SavedRunInfo,
  ScoredEvent,
  ScoreSnapshot,
} from '../worker/protocol';
import { DEFAULT_EVALUATE_OPTIONS, DEFAULT_PLAN_CHOICE, DEFAULT_RECOVER_SETTINGS, DEFAULT_SETTINGS } from './defaults';

/** The steps in the order a person takes them; a step's results are stale once an earlier step changes. */
export const PIPELINE = ['model', 'dataset', 'score', 'prune', 'check', 'recover', 'download'] as const;
export type PipelineStep = (typeof PIPELINE)[number];

export type GpuStatus =
  | { state: 'probing' }
  | { state: 'ready'; adapter: AdapterSummary }
  /** No WebGPU or no adapter: the studio can still summarise models. */
  | { state: 'unavailable'; error: ErrorInfo }
  /** The device was lost; the adapter is kept for display, the next GPU request asks for a new device. */
  | { state: 'lost'; adapter: AdapterSummary; error: ErrorInfo };

/** What the running GPU job is doing (progress events of the step that is busy). */
export interface Activity {
  step: Exclude<PipelineStep, 'model'>;
  stage: string;
  fraction?: number;
}

export interface SessionSlice {
  gpu: GpuStatus;
  activity: Activity | null;
  /** A failure outside any request (worker crash, stray error): shown in a banner until dismissed. */
  notice: ErrorInfo | null;
}

export interface ModelSlice {
  model: {
    /** What is being loaded and the latest progress phrase, while a load runs. */
    loading: { source: string; stage: string } | null;
    /** paths: each file's place in the dropped folder (subfolders kept); shadowed: deeper files of a name already taken. */
    loaded: { summary: ModelSummary; config: ModelConfig; fit: FitReport | null; fingerprint: string; paths?: Record<string, string>; shadowed?: string[] } | null;
    /** The last load's failure, shown under the drop zone. */
    error: { source: string; info: ErrorInfo } | null;
  };
}

export interface DemoDataset {
  name: string;
  bytes: number;
  rows: number;
  blob: Blob;
}

export interface DatasetSlice {
  /** The demo's dataset, fetched with the demo model, waiting for the dataset step. */
  demoDataset: DemoDataset | null;
  dataset: {
    /** The file being read, while a read runs. */
    loading: string | null;
    info: DatasetInfo | null;
    error: ErrorInfo | null;
  };
}

/** The training runs (scoring and recovery fine-tuning): one worker run control, one set of run controls. */
export type RunName = 'score' | 'recover';
export type RunState = 'idle' | 'starting' | 'running' | 'paused' | 'stopping';

/** The latest step a training run reported. */
export interface LiveRun {
  /** 0-based index of the step just finished. */
  step: number;
  steps: number;
  losses: number[];
  lr: number;
  /** Passes over the training split so far (recovery only). */
  epoch?: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
  /** null while the run is estimating (before a step after the first). */
  etaSeconds: number | null;
}

export interface Run<Result> {
  state: RunState;
  live: LiveRun | null;
  result: Result | null;
  error: ErrorInfo | null;
  /**
   * The steps the run holds after, as the worker answered the pause: a step in flight still finishes and reports
   * first; a pause taken between steps holds at once. null unless paused.
   */
  pausedAt: number | null;
}

export interface ScoreSlice {
  settings: ScoringSettings;
  /** The worker's estimate of the run's GPU memory for the current settings. */
  memory: MemoryEstimatedEvent | null;
  score: Run<ScoredEvent> & {
    /** Score snapshots as they arrive (the live rank-stability chart compares each with the latest). */
    snapshots: ScoreSnapshot[];
    /** The result is from the last visit (IndexedDB): shown, but pruning needs a new run. */
    restored: boolean;
    /** Whom restored scores belong to (the model and dataset they were scored on), and when they were saved. */
    restoredFrom: { modelName: string; datasetName: string; savedAt: number } | null;
    /** An interrupted run of the loaded model and dataset that the worker kept (OPFS), offered to continue. */
    interrupted: SavedRunInfo | null;
  };
}

export interface PruneSlice {
  planChoice: PlanChoice;
  prune: { applying: boolean; result: PrunedEvent | null; error: ErrorInfo | null };
}

export interface CheckSlice {
  evaluateOptions: EvaluateOptions;
  check: { running: boolean; result: EvaluatedEvent | null; error: ErrorInfo | null };
  /** Generations for the person's own prompt, dense and pruned. */
  custom: { running: boolean; rows: GenerationRow[]; error: ErrorInfo | null };
  /** The methods and range of N the Check compares (to: null = the plan's N). */
  compareChoice: { methods: ImportanceMethodId[]; from: number; to: number | null };
  /** Several methods' plans measured on the held-out rows. */
  comparePlans: { running: boolean; result: PlansEvaluatedEvent | null; error: ErrorInfo | null };
}

export interface RecoverSlice {
  recoverSettings: RecoverSettings;
  recover: Run<RecoveredEvent> & {
    /** An interrupted run of the pruned model and dataset that the worker kept (OPFS), offered to continue. */
    interrupted: SavedRunInfo | null;
  };
}

/** What the Download step writes: a folder (Hugging Face safetensors, transformers.js ONNX) or one GGUF file. */
export type DownloadFormat = FolderFormat | 'gguf';

export interface DownloadSlice {
  /** The format the Download step writes. */
  exportFormat: DownloadFormat;
  /** With a recovery run: the adapter merged into the weights, or a separate PEFT adapter beside the pruned weights (safetensors only). */
  exportAdapter: AdapterExport;
  download: { running: boolean; result: ExportedEvent | null; error: ErrorInfo | null; saved: string | null };
}

export type StudioState = SessionSlice & ModelSlice & DatasetSlice & ScoreSlice & PruneSlice & CheckSlice & RecoverSlice & DownloadSlice;

const idleRun = () => ({ state: 'idle' as const, live: null, result: null, error: null, pausedAt: null });

export const emptyModel = (): ModelSlice['model'] => ({ loading: null, loaded: null, error: null });
export const emptyDataset = (): DatasetSlice['dataset'] => ({ loading: null, info: null, error: null });
export const emptyScore = (): ScoreSlice['score'] => ({ ...idleRun(), snapshots: [], restored: false, restoredFrom: null, interrupted: null });
export const emptyPrune = (): PruneSlice['prune'] => ({ applying: false, result: null, error: null });
export const emptyCheck = (): CheckSlice['check'] => ({ running: false, result: null, error: null });
export const emptyCustom = (): CheckSlice['custom'] => ({ running: false, rows: [], error: null });
export const emptyComparePlans = (): CheckSlice['comparePlans'] => ({ running: false, result: null, error: null });
export const emptyRecover = (): RecoverSlice['recover'] => ({ ...idleRun(), interrupted: null });
export const emptyDownload = (): DownloadSlice['download'] => ({ running: false, result: null, error: null, saved: null });

/** Each step's results, started afresh (its choices are not here: they stay). */
export const STEP_RESULTS: { readonly [S in PipelineStep]: () => Partial<StudioState> } = {
  model: () => ({ model: emptyModel() }),
  dataset: () => ({ dataset: emptyDataset() }),
  score: () => ({ score: emptyScore() }),
  prune: () => ({ prune: emptyPrune() }),
  check: () => ({ check: emptyCheck(), custom: emptyCustom(), comparePlans: emptyComparePlans() }),
  recover: () => ({ recover: emptyRecover() }),
  download: () => ({ download: emptyDownload() }),
};

export const sessionSlice = (): SessionSlice => ({ gpu: { state: 'probing' }, activity: null, notice: null });
export const modelSlice = (): ModelSlice => ({ model: emptyModel() });
export const datasetSlice = (): DatasetSlice => ({ demoDataset: null, dataset: emptyDataset() });
export const scoreSlice = (): ScoreSlice => ({ settings: { ...DEFAULT_SETTINGS, modules: [...DEFAULT_SETTINGS.modules] }, memory: null, score: emptyScore() });
export const pruneSlice = (): PruneSlice => ({ planChoice: { ...DEFAULT_PLAN_CHOICE }, prune: emptyPrune() });
export const checkSlice = (): CheckSlice => ({
  evaluateOptions: { ...DEFAULT_EVALUATE_OPTIONS },
  check: emptyCheck(),
  custom: emptyCustom(),
  compareChoice: { methods: ['igia', 'last'], from: 1, to: null },
  comparePlans: emptyComparePlans(),
});
export const recoverSlice = (): RecoverSlice => ({ recoverSettings: { ...DEFAULT_RECOVER_SETTINGS }, recover: emptyRecover() });
export const downloadSlice = (): DownloadSlice => ({ exportFormat: 'safetensors', exportAdapter: 'merged', download: emptyDownload() });
