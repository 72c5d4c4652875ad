// The messages between the studio page and its worker. The page sends requests, each with an id; the worker
// answers with events: zero or more news events ('progress', a run's steps), then exactly one result event or one
// 'error' carrying that id. Events with requestId null are the worker's own news (the adapter at start-up, a lost
// device). The protocol is one table (Protocol below): each request's fields and the event that answers it; the
// request union, each request's result and the event names are derived from it.
// The events themselves are in ./events.ts. Everything here is plain structured-clone data (Blobs travel by reference, not by copy).

import type { GgufDType } from '../export/gguf/gguf';
import type { ScoringSettings } from '../nn/run-settings';
import type {
  AdapterExport,
  DatasetOptions,
  EvaluateOptions,
  EvaluatePlansOptions,
  ExportTarget,
  FileEntry,
  FolderFormat,
  JobSettings,
  PlanChoice,
  RecoverEvaluation,
  RecoverSettings,
  SavedRunInfo,
} from './messages';
import type {
  AdapterEvent,
  ModelLoadedEvent,
  ModelUnloadedEvent,
  DatasetLoadedEvent,
  ProbedEvent,
  MemoryEstimatedEvent,
  ScoredEvent,
  SavedRunEvent,
  ScoreControlEvent,
  PrunedEvent,
  EvaluatedEvent,
  PlansEvaluatedEvent,
  GeneratedEvent,
  RecoveredEvent,
  ExportedEvent,
  ExportFilesEvent,
  OnnxTriedEvent,
  GgufTarget,
  GgufSizesEvent,
  GgufExportedEvent,
  NewsEvent,
} from './events';

export type * from './messages';
export type * from './events';



/** The studio's requests: what each carries, and the event that answers it. */
interface Protocol {
  /** Ask for the adapter (again, e.g. after the device was lost). */
  probeGpu: { fields: {}; result: AdapterEvent };
  /** Open a checkpoint from its files. The previous model is dropped first. */
  loadModel: { fields: { files: FileEntry[]; name: string }; result: ModelLoadedEvent };
  /** Forget the loaded model. */
  unloadModel: { fields: {}; result: ModelUnloadedEvent };
  /** Read, tokenize, split and preview a dataset file for the loaded model. */
  loadDataset: { fields: { file: Blob; fileName: string; options: DatasetOptions }; result: DatasetLoadedEvent };
  /** Read the current dataset file again with another format, column mapping or split. */
  setFormat: { fields: { options: DatasetOptions }; result: DatasetLoadedEvent };
  /** The GPU memory a scoring run with these settings needs, and whether this adapter allows it. */
  estimateMemory: { fields: { settings: ScoringSettings }; result: MemoryEstimatedEvent };
  /** A time estimate for a scoring run with these settings: two real steps measured on the loaded model (a training run). */
  probeRun: { fields: { settings: Partial<ScoringSettings> }; result: ProbedEvent };
  /**
   * Run GradPruner's scoring (the first LoRA steps); 'scoreStep' events while it runs. Snapshots go to the worker's
   * storage every few steps; `resume` continues the loaded pair's interrupted run instead (with its own settings).
   */
  score: { fields: { settings: Partial<ScoringSettings>; resume?: boolean }; result: ScoredEvent };
  /** The loaded model and dataset's interrupted run of this kind, kept in the worker's storage (null: none). */
  findSavedRun: { fields: { kind: SavedRunInfo['kind'] }; result: SavedRunEvent };
  /** Forget that run (the answer's run is null). */
  discardSavedRun: { fields: { kind: SavedRunInfo['kind'] }; result: SavedRunEvent };
  /** Pause, resume or stop the running score or recovery (a stopped run still answers with the steps done). */
  pause: { fields: {}; result: ScoreControlEvent };
  resume: { fields: {}; result: ScoreControlEvent };
  stop: { fields: {}; result: ScoreControlEvent };
  /** Merge the pruned checkpoint for a plan over the last scores. */
  applyPrune: { fields: { plan: PlanChoice }; result: PrunedEvent };
  /** Dense vs pruned on the held-out split, and side-by-side generations. */
  evaluate: { fields: { options: EvaluateOptions }; result: EvaluatedEvent };
  /** Several methods' plans (dropped, no merge) for several N, each measured on the Check's held-out rows. */
  evaluatePlans: { fields: { options: EvaluatePlansOptions }; result: PlansEvaluatedEvent };
  /** Greedy generations of both models for given prompts (weights in the session's precision). */
  generate: { fields: { prompts: string[]; maxNewTokens: number } & Partial<JobSettings>; result: GeneratedEvent };
  /** Recovery fine-tuning of the pruned model (a fresh LoRA), then dense / pruned / recovered measured side by side; 'recoverStep' events while it trains. */
  recover: { fields: { settings: RecoverSettings; evaluation: RecoverEvaluation; resume?: boolean }; result: RecoveredEvent };
  /**
   * The pruned checkpoint folder as files and as one zip: `format` safetensors (the default) or ONNX for
   * transformers.js. After a recovery run, `adapter` says how the adapter comes along: merged into the weights (the
   * default; always for ONNX) or as a PEFT adapter folder (adapter/) beside the pruned weights. `target` says where
   * it goes: an in-memory zip (the default; small models), a folder picked with showDirectoryPicker, or one zip
   * streamed into a file picked with showSaveFilePicker.
   */
  exportZip: { fields: { adapter?: AdapterExport; format?: FolderFormat; target?: ExportTarget }; result: ExportedEvent };
  /** The files (and sizes) a download of that format and adapter choice will hold, and its folder name: what the download table shows. */
  exportFiles: { fields: { adapter?: AdapterExport; format?: FolderFormat }; result: ExportFilesEvent };
  /**
   * The pruned model exported as ONNX (fp32, in memory; small models) and run here with onnxruntime-web (wasm) beside
   * our engine's greedy continuation of the same prompt; the transformers.js folder comes back as a zip.
   */
  tryOnnx: { fields: { prompt: string; maxNewTokens: number } & Partial<JobSettings>; result: OnnxTriedEvent };
  /** The GGUF files a download can make (f16, q8_0: llama.cpp / Ollama) and their sizes, before anything is written. */
  ggufSizes: { fields: {}; result: GgufSizesEvent };
  /** The pruned (after recovery: recovered, adapter merged) model as one GGUF file, in memory or streamed into a picked file. */
  exportGguf: { fields: { dtype: GgufDType; target?: GgufTarget }; result: GgufExportedEvent };
}

export type RequestType = keyof Protocol;
export type RequestOf<K extends RequestType> = { type: K } & Protocol[K]['fields'];
export type WorkerRequest = { [K in RequestType]: RequestOf<K> }[RequestType];
export type RequestMessage = WorkerRequest & { id: number };

/** Which event completes which request. */
export type ResultOf = { [K in RequestType]: Protocol[K]['result'] };
/** What a request's handler returns: its result event without the envelope (the host adds type and requestId). */
export type ResultBody<K extends RequestType> = Omit<ResultOf[K], 'type' | 'requestId'>;

/** The result event's type of each request (each key can take one value only: the table's). */
export const RESULT_EVENT_TYPE: { readonly [K in RequestType]: ResultOf[K]['type'] } = {
  probeGpu: 'adapter',
  loadModel: 'modelLoaded',
  unloadModel: 'modelUnloaded',
  loadDataset: 'datasetLoaded',
  setFormat: 'datasetLoaded',
  estimateMemory: 'memoryEstimated',
  probeRun: 'probed',
  score: 'scored',
  findSavedRun: 'savedRun',
  discardSavedRun: 'savedRun',
  pause: 'scoreControl',
  resume: 'scoreControl',
  stop: 'scoreControl',
  applyPrune: 'pruned',
  evaluate: 'evaluated',
  evaluatePlans: 'plansEvaluated',
  generate: 'generated',
  recover: 'recovered',
  exportZip: 'exported',
  exportFiles: 'exportFiles',
  ggufSizes: 'ggufSizes',
  tryOnnx: 'onnxTried',
  exportGguf: 'ggufExported',
};

export type WorkerEvent = ResultOf[RequestType] | NewsEvent;

const NEWS_EVENT_TYPES: { readonly [T in NewsEvent['type']]: true } = { progress: true, scoreStep: true, recoverStep: true, deviceLost: true, error: true };
const EVENT_TYPES = new Set<string>([...Object.values(RESULT_EVENT_TYPE), ...Object.keys(NEWS_EVENT_TYPES)]);

/** Structured-clone-safe check that a message from the worker is an event we know. */
export function isWorkerEvent(data: unknown): data is WorkerEvent {
  if (typeof data !== 'object' || data === null) return false;
  const t = (data as { type?: unknown }).type;
  return typeof t === 'string' && EVENT_TYPES.has(t);
}
