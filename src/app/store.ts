// The studio's state: one zustand store made of slices. Components read it with selectors; only the actions in
// ./actions.ts (and applyWorkerEvent below) write it.

import { create } from 'zustand';
import type { ErrorInfo } from '../errors';
import type { AdapterSummary } from '../gpu/device';
import type { ScoringSettings } from '../gradprune/pipeline';
import type { ModelConfig } from '../model/config';
import type { FitReport, ModelSummary } from '../model/summary';
import type {
  AdapterExport,
  DatasetInfo,
  EvaluatedEvent,
  EvaluateOptions,
  ExportedEvent,
  GenerationRow,
  MemoryEstimatedEvent,
  PlanChoice,
  PrunedEvent,
  RecoveredEvent,
  RecoverSettings,
  ScoredEvent,
  ScoreSnapshot,
  WorkerEvent,
} from '../worker/protocol';
import { DEFAULT_EVALUATE_OPTIONS, DEFAULT_PLAN_CHOICE, DEFAULT_SETTINGS } from './defaults';
import { DEFAULT_RECOVER_SETTINGS } from './recover-defaults';

export type GpuStatus =
  | { state: 'probing' }
  | { state: 'ready'; adapter: AdapterSummary }
  /** No WebGPU or no adapter: the studio can still summarise models. */
  | { state: 'unavailable'; error: ErrorInfo }
  /** The device was lost; the adapter is kept for display, the next GPU request asks for a new device. */
  | { state: 'lost'; adapter: AdapterSummary; error: ErrorInfo };

export interface GpuSlice {
  gpu: GpuStatus;
}

export interface ModelSlice {
  model: {
    /** What is being loaded and the latest progress phrase, while a load runs. */
    loading: { source: string; stage: string } | null;
    loaded: { summary: ModelSummary; config: ModelConfig; fit: FitReport | null } | null;
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

/** What the running GPU job is doing (progress events of the step that is busy). */
export interface Activity {
  step: 'dataset' | 'score' | 'prune' | 'check' | 'recover' | 'download';
  stage: string;
  fraction?: number;
}

export interface LiveScore {
  step: number;
  steps: number;
  losses: number[];
  lr: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
  etaSeconds: number;
}

export interface ScoreSlice {
  settings: ScoringSettings;
  /** The worker's estimate of the run's GPU memory for the current settings. */
  memory: MemoryEstimatedEvent | null;
  score: {
    state: 'idle' | 'starting' | 'running' | 'paused' | 'stopping';
    live: LiveScore | null;
    /** Score snapshots as they arrive (the live rank-stability chart compares each with the latest). */
    snapshots: ScoreSnapshot[];
    result: ScoredEvent | null;
    /** The result is from the last visit (IndexedDB): shown, but pruning needs a new run. */
    restored: boolean;
    error: ErrorInfo | null;
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
}

export interface LiveRecover {
  step: number;
  steps: number;
  losses: number[];
  lr: number;
  epoch: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
  etaSeconds: number;
}

export interface RecoverSlice {
  recoverSettings: RecoverSettings;
  recover: {
    state: 'idle' | 'starting' | 'running' | 'paused' | 'stopping';
    live: LiveRecover | null;
    result: RecoveredEvent | null;
    error: ErrorInfo | null;
  };
  /** With a recovery run: the adapter merged into the weights, or a separate PEFT adapter beside the pruned weights. */
  exportAdapter: AdapterExport;
}

export interface DownloadSlice {
  download: { running: boolean; result: ExportedEvent | null; error: ErrorInfo | null; saved: string | null };
}

export interface NoticeSlice {
  /** A failure outside any request (worker crash, stray error): shown in a banner until dismissed. */
  notice: ErrorInfo | null;
}

export interface ActivitySlice {
  activity: Activity | null;
}

export type StudioState = GpuSlice & ModelSlice & DatasetSlice & ScoreSlice & PruneSlice & CheckSlice & RecoverSlice & DownloadSlice & ActivitySlice & NoticeSlice;

/** The state of every step after the model, as a new model (or dataset) leaves it. */
export const emptyScore = (): ScoreSlice['score'] => ({ state: 'idle', live: null, snapshots: [], result: null, restored: false, error: null });
export const emptyPrune = (): PruneSlice['prune'] => ({ applying: false, result: null, error: null });
export const emptyCheck = (): CheckSlice['check'] => ({ running: false, result: null, error: null });
export const emptyRecover = (): RecoverSlice['recover'] => ({ state: 'idle', live: null, result: null, error: null });
export const emptyDownload = (): DownloadSlice['download'] => ({ running: false, result: null, error: null, saved: null });


export const initialState = (): StudioState => ({
  gpu: { state: 'probing' },
  model: { loading: null, loaded: null, error: null },
  demoDataset: null,
  dataset: { loading: null, info: null, error: null },
  settings: { ...DEFAULT_SETTINGS, modules: [...DEFAULT_SETTINGS.modules] },
  memory: null,
  score: emptyScore(),
  planChoice: { ...DEFAULT_PLAN_CHOICE },
  prune: emptyPrune(),
  evaluateOptions: { ...DEFAULT_EVALUATE_OPTIONS },
  check: emptyCheck(),
  custom: { running: false, rows: [], error: null },
  recoverSettings: { ...DEFAULT_RECOVER_SETTINGS },
  recover: emptyRecover(),
  exportAdapter: 'merged',
  download: emptyDownload(),
  activity: null,
  notice: null,
});

/** Keep at most this many score snapshots (the live stability chart thins them out). */
const MAX_SNAPSHOTS = 200;

export const useStudio = create<StudioState>()(initialState);

/** Fold one worker event into the store (request results are also handled by the action awaiting them). */
export function applyWorkerEvent(event: WorkerEvent): void {
  const set = useStudio.setState;
  switch (event.type) {
    case 'adapter':
      set({ gpu: event.adapter ? { state: 'ready', adapter: event.adapter } : { state: 'unavailable', error: event.error ?? { code: 'gpu', message: 'No WebGPU adapter.' } } });
      return;
    case 'deviceLost': {
      const { gpu } = useStudio.getState();
      if (gpu.state === 'ready' || gpu.state === 'lost') set({ gpu: { state: 'lost', adapter: gpu.adapter, error: event.error } });
      else set({ gpu: { state: 'unavailable', error: event.error } });
      return;
    }
    case 'progress':
      set((s) =>
        s.model.loading
          ? { model: { ...s.model, loading: { ...s.model.loading, stage: event.stage } } }
          : s.activity
            ? { activity: { ...s.activity, stage: event.stage, fraction: event.fraction } }
            : s,
      );
      return;
    case 'scoreStep':
      set((s) => {
        const snapshots = [...s.score.snapshots, event.scores];
        return {
          score: {
            ...s.score,
            state: s.score.state === 'starting' ? 'running' : s.score.state,
            live: {
              step: event.step,
              steps: event.steps,
              losses: event.losses,
              lr: event.lr,
              tokensPerSecond: event.tokensPerSecond,
              elapsedSeconds: event.elapsedSeconds,
              etaSeconds: event.etaSeconds,
            },
            snapshots: snapshots.length > MAX_SNAPSHOTS ? snapshots.filter((_, i) => i % 2 === 1) : snapshots,
          },
          activity: s.activity?.step === 'score' ? { step: 'score', stage: `Step ${event.step + 1} of ${event.steps}`, fraction: (event.step + 1) / event.steps } : s.activity,
        };
      });
      return;
    case 'recoverStep':
      set((s) => ({
        recover: {
          ...s.recover,
          state: s.recover.state === 'starting' ? 'running' : s.recover.state,
          live: {
            step: event.step,
            steps: event.steps,
            losses: event.losses,
            lr: event.lr,
            epoch: event.epoch,
            tokensPerSecond: event.tokensPerSecond,
            elapsedSeconds: event.elapsedSeconds,
            etaSeconds: event.etaSeconds,
          },
        },
        activity: s.activity?.step === 'recover' ? { step: 'recover', stage: `Step ${event.step + 1} of ${event.steps}`, fraction: (event.step + 1) / event.steps } : s.activity,
      }));
      return;
    case 'error':
      if (event.requestId === null) set({ notice: event.error });
      return;
    default:
      return; // request results are settled by the awaiting action
  }
}
