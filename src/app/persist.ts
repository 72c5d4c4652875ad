// What survives a reload, in IndexedDB, tied to what it belongs to (never weights, never a dataset):
//   models: model fingerprint → the scoring settings chosen for that model (settings are per model: another model
//           starts from the defaults, or from its own saved ones);
//   runs:   (model fingerprint, dataset fingerprint) → the last scores and the plan choice for that pair, with the
//           model's and the dataset's names to say whom they belong to. A different dataset does not get them.
// Restored scores are shown, not pruned with: the merge needs the run's gradient factors, which live in the worker.
// Without IndexedDB (private mode, Node tests) the records live in memory for the page's lifetime.

import type { ScoringSettings } from '../nn/run-settings';
import type { PlanChoice, ScoredEvent } from '../worker/protocol';
import { useStudio, type StudioState } from './store';

const DB = 'gradprune-studio';
const VERSION = 2;
type StoreName = 'models' | 'runs';

export interface SavedModel {
  fingerprint: string;
  modelName: string;
  settings: ScoringSettings;
}

export interface SavedRun {
  modelFingerprint: string;
  datasetFingerprint: string;
  modelName: string;
  datasetName: string;
  /** Date.now() when the scores were saved. */
  savedAt: number;
  scores: ScoredEvent | null;
  planChoice: PlanChoice;
}

/** The pair a run record is kept under. */
export const runKey = (modelFingerprint: string, datasetFingerprint: string) => `${modelFingerprint}/${datasetFingerprint}`;

/** The loaded model's record (its settings), or null without a model. */
export function modelRecordOf(s: StudioState): SavedModel | null {
  const loaded = s.model.loaded;
  return loaded ? { fingerprint: loaded.fingerprint, modelName: loaded.summary.name, settings: s.settings } : null;
}

/**
 * The loaded pair's record: this run's scores (restored ones are already saved: `previous` keeps them) and the
 * plan choice; null without a model and a dataset.
 */
export function runRecordOf(s: StudioState, previous: SavedRun | null, now = Date.now()): SavedRun | null {
  const loaded = s.model.loaded;
  const info = s.dataset.info;
  if (!loaded || !info) return null;
  const fresh = s.score.result && !s.score.restored ? s.score.result : null;
  const same = previous && previous.modelFingerprint === loaded.fingerprint && previous.datasetFingerprint === info.fingerprint ? previous : null;
  return {
    modelFingerprint: loaded.fingerprint,
    datasetFingerprint: info.fingerprint,
    modelName: loaded.summary.name,
    datasetName: info.fileName,
    savedAt: fresh ? now : (same?.savedAt ?? now),
    scores: fresh ?? same?.scores ?? null,
    planChoice: s.planChoice,
  };
}

const RANKED_BY: readonly PlanChoice['rankedBy'][] = ['paper', 'code', 'bi', 'angular', 'magnitude', 'last'];

/** A saved plan choice as the studio can use it: an unknown ranking (a record from another version) becomes IGIA's. */
export const restoredPlanChoice = (saved: PlanChoice): PlanChoice => (RANKED_BY.includes(saved.rankedBy) ? saved : { ...saved, rankedBy: 'paper' });

/** Saved scores apply to the loaded pair only, and only when they have the model's layer count. */
export function restorableRun(saved: SavedRun | null, modelFingerprint: string, datasetFingerprint: string, layers: number): SavedRun | null {
  if (!saved?.scores || saved.modelFingerprint !== modelFingerprint || saved.datasetFingerprint !== datasetFingerprint) return null;
  return saved.scores.scores.layerScores.length === layers ? saved : null;
}

const memory: Record<StoreName, Map<string, unknown>> = { models: new Map(), runs: new Map() };
let opening: Promise<IDBDatabase | null> | null = null;

function open(): Promise<IDBDatabase | null> {
  if (typeof indexedDB === 'undefined') return Promise.resolve(null);
  opening ??= new Promise((resolve) => {
    const req = indexedDB.open(DB, VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      // v1 kept one global record (scores keyed by model name): it cannot say which dataset they were for.
      if (db.objectStoreNames.contains('session')) db.deleteObjectStore('session');
      for (const name of ['models', 'runs'] as const) if (!db.objectStoreNames.contains(name)) db.createObjectStore(name);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => resolve(null); // blocked storage: the studio works without it (in memory)
    req.onblocked = () => resolve(null);
  });
  return opening;
}

async function get<T>(store: StoreName, key: string): Promise<T | null> {
  const db = await open();
  if (!db) return (memory[store].get(key) as T | undefined) ?? null;
  return new Promise((resolve) => {
    const req = db.transaction(store, 'readonly').objectStore(store).get(key);
    req.onsuccess = () => resolve((req.result as T | undefined) ?? null);
    req.onerror = () => resolve(null);
  });
}

async function put(store: StoreName, key: string, value: unknown): Promise<void> {
  const db = await open();
  if (!db) {
    memory[store].set(key, value);
    return;
  }
  await new Promise<void>((resolve) => {
    const tx = db.transaction(store, 'readwrite');
    tx.objectStore(store).put(value, key);
    tx.oncomplete = () => resolve();
    tx.onerror = () => resolve();
  });
}

export const loadSavedModel = (fingerprint: string): Promise<SavedModel | null> => get<SavedModel>('models', fingerprint);
export const loadSavedRun = (modelFingerprint: string, datasetFingerprint: string): Promise<SavedRun | null> =>
  get<SavedRun>('runs', runKey(modelFingerprint, datasetFingerprint));

/** Save the loaded model's settings and the loaded pair's scores and plan choice, as they are at the call. */
export async function saveSession(): Promise<void> {
  const s = useStudio.getState();
  const model = modelRecordOf(s);
  if (!model) return;
  await put('models', model.fingerprint, model);
  const info = s.dataset.info;
  if (!info) return;
  const previous = await loadSavedRun(model.fingerprint, info.fingerprint);
  const run = runRecordOf(s, previous);
  if (run) await put('runs', runKey(run.modelFingerprint, run.datasetFingerprint), run);
}

/** Forget the loaded pair's saved scores (the person discarded them); the plan choice stays saved. */
export async function forgetSavedScores(modelFingerprint: string, datasetFingerprint: string): Promise<void> {
  const previous = await loadSavedRun(modelFingerprint, datasetFingerprint);
  if (previous) await put('runs', runKey(modelFingerprint, datasetFingerprint), { ...previous, scores: null });
}
