// The studio's state: one zustand store made of slices. Components read it with selectors; only the actions in
// ./actions.ts (and applyWorkerEvent below) write it.

import { create } from 'zustand';
import type { ErrorInfo } from '../errors';
import type { AdapterSummary } from '../gpu/device';
import type { FitReport, ModelSummary } from '../model/summary';
import type { WorkerEvent } from '../worker/protocol';

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
    loaded: { summary: ModelSummary; fit: FitReport | null } | null;
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
}

export interface NoticeSlice {
  /** A failure outside any request (worker crash, stray error): shown in a banner until dismissed. */
  notice: ErrorInfo | null;
}

export type StudioState = GpuSlice & ModelSlice & DatasetSlice & NoticeSlice;

export const initialState = (): StudioState => ({
  gpu: { state: 'probing' },
  model: { loading: null, loaded: null, error: null },
  demoDataset: null,
  notice: null,
});

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
      set((s) => (s.model.loading ? { model: { ...s.model, loading: { ...s.model.loading, stage: event.stage } } } : s));
      return;
    case 'error':
      if (event.requestId === null) set({ notice: event.error });
      return;
    case 'modelLoaded':
    case 'modelUnloaded':
      return; // settled by the awaiting action, which knows whether the load is still the current one
  }
}
