// The steps after the model, as plain functions over the store and the worker: dataset, scoring (with pause /
// resume / stop), prune, check, recovery fine-tuning (pause / resume / stop likewise), download. Each step's failure lands in that step's slice, with what to do next.

import type { ScoringSettings } from '../gradprune/pipeline';
import type { AdapterExport, DatasetOptions, ExportTarget, JobSettings, PlanChoice, RecoverSettings } from '../worker/protocol';
import { toInfo, worker } from './actions';
import { DEFAULT_DATASET_OPTIONS } from './defaults';
import { saveSession } from './persist';
import { emptyCheck, emptyDownload, emptyPrune, emptyRecover, emptyScore, useStudio, type Activity } from './store';

const set = useStudio.setState;
const get = useStudio.getState;

/** Run one GPU job of a step with its progress shown; returns null when it failed (the error is in the slice). */
async function withActivity<T>(step: Activity['step'], stage: string, job: () => Promise<T>): Promise<T | null> {
  set({ activity: { step, stage } });
  try {
    return await job();
  } finally {
    if (get().activity?.step === step) set({ activity: null });
  }
}

/** The dataset options now in force: the person's last choices (or the defaults), with the scoring sequence length. */
function datasetOptions(overrides: Partial<DatasetOptions> = {}): DatasetOptions {
  const current = get().dataset.info?.options;
  return { ...DEFAULT_DATASET_OPTIONS, ...current, maxSeqLen: get().settings.seqLen, ...overrides };
}

/** A new dataset makes this session's scores and everything after them stale (scores restored from the last visit stay on show). */
const clearAfterDataset = () => ({
  score: get().score.restored ? get().score : emptyScore(),
  prune: emptyPrune(),
  check: emptyCheck(),
  recover: emptyRecover(),
  download: emptyDownload(),
});

/** Read a dataset file (a drop, a pick or the demo's) with the detected format. */
export async function loadDatasetFile(file: Blob, fileName: string): Promise<void> {
  set({ dataset: { loading: fileName, info: null, error: null }, ...clearAfterDataset() });
  // Format and columns belong to a file: a new file is detected afresh (split and length are kept).
  const { format: _f, columns: _c, multipleChoiceSchema: _s, ...kept } = datasetOptions();
  try {
    const result = await withActivity('dataset', `Reading ${fileName}`, () =>
      worker().request({ type: 'loadDataset', file, fileName, options: kept }),
    );
    if (result) set({ dataset: { loading: null, info: result.dataset, error: null } });
  } catch (err) {
    set({ dataset: { loading: null, info: null, error: toInfo(err) } });
  }
}

/** Read the same file again with another format / mapping / split / length. */
export async function setDatasetOptions(overrides: Partial<DatasetOptions>): Promise<void> {
  const info = get().dataset.info;
  if (!info) return;
  const options = datasetOptions(overrides);
  set((s) => ({ dataset: { ...s.dataset, loading: info.fileName, error: null }, ...clearAfterDataset() }));
  try {
    const result = await withActivity('dataset', `Reading ${info.fileName}`, () => worker().request({ type: 'setFormat', options }));
    if (result) set({ dataset: { loading: null, info: result.dataset, error: null } });
  } catch (err) {
    // The previous reading stays on screen; the error says why the new one failed.
    set((s) => ({ dataset: { ...s.dataset, loading: null, error: toInfo(err) } }));
  }
}

/**
 * The session's weight precision and GPU memory limit (the scoring settings'): every GPU job — scoring, Check,
 * generation, Recover — holds its weights the same way.
 */
export const jobSettings = (): JobSettings => ({ weights: get().settings.weights, maxGpuMemory: get().settings.maxGpuMemory });

export function updateSettings(patch: Partial<ScoringSettings>): void {
  set((s) => ({ settings: { ...s.settings, ...patch } }));
  void saveSession();
}

let estimateToken = 0;

/** Ask the worker what the current settings need on the GPU (the page does not load the engine to know). */
export async function refreshMemoryEstimate(): Promise<void> {
  const token = ++estimateToken;
  try {
    const memory = await worker().request({ type: 'estimateMemory', settings: get().settings });
    if (token === estimateToken) set({ memory });
  } catch {
    if (token === estimateToken) set({ memory: null });
  }
}

/** A recovery run owns the worker's one training run until it ends (its result needs the pruned model it started from). */
const recovering = () => get().recover.state !== 'idle';
const recoveringError = (what: string) => ({ code: 'input' as const, message: `A recovery fine-tuning is running in step 5: stop it (or let it finish) before ${what}.` });

export async function startScoring(): Promise<void> {
  if (recovering()) {
    set((s) => ({ score: { ...s.score, error: recoveringError('scoring again') } }));
    return;
  }
  const { settings } = get();
  set({ score: { ...emptyScore(), state: 'starting' }, prune: emptyPrune(), check: emptyCheck(), recover: emptyRecover(), download: emptyDownload() });
  try {
    const result = await withActivity('score', 'Starting', () => worker().request({ type: 'score', settings }));
    if (result) {
      set((s) => ({ score: { ...s.score, state: 'idle', result, restored: false, error: null } }));
      const layers = result.scores.layerScores.length;
      // A first plan to look at: about a quarter of the layers, three merged at most.
      set((s) => {
        const prune = s.planChoice.prune > 0 && s.planChoice.prune < layers - 1 ? s.planChoice.prune : Math.max(1, Math.floor(layers / 4));
        return { planChoice: { ...s.planChoice, prune, merge: Math.min(s.planChoice.merge || Math.min(3, prune), prune) } };
      });
      void saveSession();
    }
  } catch (err) {
    const info = toInfo(err);
    // Stopped before the first step finished: nothing to show, and nothing went wrong.
    set((s) => ({ score: { ...s.score, state: 'idle', error: info.code === 'cancelled' ? null : info } }));
  }
}

export async function controlScoring(action: 'pause' | 'resume' | 'stop'): Promise<void> {
  try {
    const r = await worker().request({ type: action });
    set((s) => ({ score: { ...s.score, state: r.state === 'idle' ? s.score.state : r.state } }));
  } catch (err) {
    set((s) => ({ score: { ...s.score, error: toInfo(err) } }));
  }
}

/** Which score ranks the layers (the plan's rankedBy): the paper's Σ F or the released code's Σ‖S‖_F. */
export function setMetric(metric: PlanChoice['rankedBy']): void {
  set((s) => ({ planChoice: { ...s.planChoice, rankedBy: metric } }));
  void saveSession();
}

export function updatePlanChoice(patch: Partial<PlanChoice>): void {
  set((s) => {
    const next = { ...s.planChoice, ...patch };
    next.merge = Math.min(next.merge, next.prune);
    return { planChoice: next };
  });
  void saveSession();
}

export async function applyPrune(): Promise<void> {
  if (recovering()) {
    set((s) => ({ prune: { ...s.prune, error: recoveringError('applying another plan') } }));
    return;
  }
  const { planChoice } = get();
  set({ prune: { ...emptyPrune(), applying: true }, check: emptyCheck(), custom: { running: false, rows: [], error: null }, recover: emptyRecover(), download: emptyDownload() });
  try {
    const result = await withActivity('prune', 'Merging', () => worker().request({ type: 'applyPrune', plan: planChoice }));
    set({ prune: { applying: false, result, error: null } });
  } catch (err) {
    set({ prune: { applying: false, result: null, error: toInfo(err) } });
  }
}

export async function evaluate(): Promise<void> {
  const options = get().evaluateOptions;
  set({ check: { running: true, result: null, error: null } });
  try {
    const result = await withActivity('check', 'Evaluating', () => worker().request({ type: 'evaluate', options: { ...options, ...jobSettings() } }));
    set({ check: { running: false, result, error: null } });
  } catch (err) {
    set({ check: { running: false, result: null, error: toInfo(err) } });
  }
}

export function updateEvaluateOptions(patch: Partial<ReturnType<typeof get>['evaluateOptions']>): void {
  set((s) => ({ evaluateOptions: { ...s.evaluateOptions, ...patch } }));
}

/** Greedy continuations of the person's own prompt by the dense and the pruned model. */
export async function generateCustom(prompt: string): Promise<void> {
  if (!prompt.trim()) return;
  const { maxNewTokens } = get().evaluateOptions;
  set((s) => ({ custom: { ...s.custom, running: true, error: null } }));
  try {
    const result = await withActivity('check', 'Generating', () => worker().request({ type: 'generate', prompts: [prompt], maxNewTokens, ...jobSettings() }));
    set((s) => ({ custom: { running: false, rows: [...(result?.generations ?? []), ...s.custom.rows].slice(0, 10), error: null } }));
  } catch (err) {
    set((s) => ({ custom: { ...s.custom, running: false, error: toInfo(err) } }));
  }
}

export function updateRecoverSettings(patch: Partial<RecoverSettings>): void {
  set((s) => ({ recoverSettings: { ...s.recoverSettings, ...patch } }));
}

/** Fine-tune the pruned model with a fresh LoRA; the zip prepared before it no longer holds what the Check shows. */
export async function startRecovery(): Promise<void> {
  const { recoverSettings, evaluateOptions } = get();
  set({ recover: { ...emptyRecover(), state: 'starting' }, download: emptyDownload() });
  try {
    const result = await withActivity('recover', 'Starting', () =>
      worker().request({ type: 'recover', settings: { ...recoverSettings, ...jobSettings() }, evaluation: { maxExamples: evaluateOptions.maxExamples } }),
    );
    set((s) => ({ recover: { ...s.recover, state: 'idle', result, error: null } }));
  } catch (err) {
    const info = toInfo(err);
    // Stopped before the first step: nothing to show, and nothing went wrong.
    set((s) => ({ recover: { ...s.recover, state: 'idle', error: info.code === 'cancelled' ? null : info } }));
  }
}

/** Pause, resume or stop the recovery run (the worker has one run control for scoring and recovery). */
export async function controlRecovery(action: 'pause' | 'resume' | 'stop'): Promise<void> {
  try {
    const r = await worker().request({ type: action });
    set((s) => ({ recover: { ...s.recover, state: r.state === 'idle' ? s.recover.state : r.state } }));
  } catch (err) {
    set((s) => ({ recover: { ...s.recover, error: toInfo(err) } }));
  }
}

/** Merged into the weights, or a separate PEFT adapter: a zip prepared for the other choice is dropped. */
export function setExportAdapter(adapter: AdapterExport): void {
  set((s) => (s.exportAdapter === adapter ? s : { exportAdapter: adapter, download: emptyDownload() }));
}

/** Build the zip (and keep the files for a folder save). */
export async function prepareDownload(): Promise<void> {
  const adapter = get().exportAdapter;
  set({ download: { ...emptyDownload(), running: true } });
  try {
    const result = await withActivity('download', 'Zipping', () => worker().request({ type: 'exportZip', adapter }));
    set({ download: { running: false, result, error: null, saved: null } });
  } catch (err) {
    set({ download: { running: false, result: null, error: toInfo(err), saved: null } });
  }
}

type Pickers = {
  showDirectoryPicker?: (o?: object) => Promise<FileSystemDirectoryHandle>;
  showSaveFilePicker?: (o?: object) => Promise<FileSystemFileHandle>;
};

/** Which File System Access pickers this browser has (Chrome and Edge have both; Firefox and Safari neither). */
export function savePickers(): { folder: boolean; zipFile: boolean } {
  const w = (typeof window === 'undefined' ? {} : window) as Pickers;
  return { folder: typeof w.showDirectoryPicker === 'function', zipFile: typeof w.showSaveFilePicker === 'function' };
}

/** The exported folder's name as the worker gives it: <model>-gradprune-<N>L, "-recovered" with a merged adapter. */
function exportFolderName(): string {
  const s = get();
  const base = `${s.model.loaded?.summary.name ?? 'model'}-gradprune-${s.prune.result?.plan.kept.length ?? 0}L`;
  return s.recover.result && s.exportAdapter === 'merged' ? `${base}-recovered` : base;
}

/**
 * Save the checkpoint straight into what the person picks: a folder (showDirectoryPicker; the worker writes
 * <picked>/<folder name>/… file by file) or one zip file (showSaveFilePicker; the worker streams the zip into it).
 * Nothing is built in memory first. The picker is opened first, inside the click (it needs the user gesture).
 */
export async function saveExport(kind: 'folder' | 'zipFile'): Promise<void> {
  const w = window as unknown as Pickers;
  const adapter = get().exportAdapter;
  let target: ExportTarget;
  try {
    if (kind === 'folder') {
      if (!w.showDirectoryPicker) return;
      target = { kind: 'folder', handle: await w.showDirectoryPicker({ mode: 'readwrite', id: 'gradprune-export' }) };
    } else {
      if (!w.showSaveFilePicker) return;
      const name = `${exportFolderName()}.zip`;
      target = { kind: 'zipFile', handle: await w.showSaveFilePicker({ suggestedName: name, types: [{ description: 'Zip archive', accept: { 'application/zip': ['.zip'] } }] }) };
    }
  } catch (err) {
    if ((err as Error).name === 'AbortError') return; // the person closed the picker
    set((s) => ({ download: { ...s.download, error: toInfo(err) } }));
    return;
  }
  set((s) => ({ download: { ...s.download, running: true, error: null, saved: null } }));
  try {
    const result = await withActivity('download', kind === 'folder' ? 'Writing the folder' : 'Writing the zip', () => worker().request({ type: 'exportZip', adapter, target }));
    set((s) => ({ download: { ...s.download, running: false, saved: result?.savedTo ?? null } }));
  } catch (err) {
    const info = toInfo(err);
    set((s) => ({ download: { ...s.download, running: false, error: { ...info, message: `Could not write the ${kind === 'folder' ? 'folder' : 'zip file'}: ${info.message}` } } }));
  }
}
