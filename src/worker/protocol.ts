// The messages between the studio page and its worker. The page sends requests, each with an id; the worker
// answers with events: zero or more 'progress' events, then exactly one result event or one 'error' carrying
// that id. Events with requestId null are the worker's own news (the adapter at start-up, a lost device).
// Everything here is plain structured-clone data (Blobs travel by reference, not by copy).

import type { ErrorInfo } from '../errors';
import type { AdapterSummary } from '../gpu/device';
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
  | { type: 'unloadModel' };
// Later steps add their requests here, each answered by its own result event:
// loadDataset → datasetLoaded, score → scored (with 'metrics' events per step), prune → pruned,
// evaluate → evaluated, exportModel → exported, cancel → the cancelled request's 'error' (code 'cancelled').

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

export type WorkerEvent = AdapterEvent | ModelLoadedEvent | ModelUnloadedEvent | ProgressEvent | DeviceLostEvent | ErrorEvent;

/** Which event completes which request. */
export interface ResultOf {
  probeGpu: AdapterEvent;
  loadModel: ModelLoadedEvent;
  unloadModel: ModelUnloadedEvent;
}

export const RESULT_EVENT_TYPE: { readonly [K in RequestType]: ResultOf[K]['type'] } = {
  probeGpu: 'adapter',
  loadModel: 'modelLoaded',
  unloadModel: 'modelUnloaded',
};

/** Structured-clone-safe check that a message from the worker is an event we know. */
export function isWorkerEvent(data: unknown): data is WorkerEvent {
  if (typeof data !== 'object' || data === null) return false;
  const t = (data as { type?: unknown }).type;
  return t === 'adapter' || t === 'modelLoaded' || t === 'modelUnloaded' || t === 'progress' || t === 'deviceLost' || t === 'error';
}
