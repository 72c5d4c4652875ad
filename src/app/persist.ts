// What survives a reload, in IndexedDB: the scoring settings, the plan choice (with the score it ranks by) and the last
// scores (a few numbers per layer; never weights). Restored scores are shown for the same model only; pruning
// needs the run's gradient factors, which live in the worker, so a restored run must be scored again to prune.

import type { ScoredEvent } from '../worker/protocol';
import { useStudio, type StudioState } from './store';

const DB = 'gradprune-studio';
const STORE = 'session';
const KEY = 'v1';

export interface SavedSession {
  settings: StudioState['settings'];
  planChoice: StudioState['planChoice'];
  /** The last scores and the model they belong to (name and layer count). */
  lastScores: { model: string; layers: number; result: ScoredEvent } | null;
}

/** The part of the state worth saving (kept small: no weights, no dataset). */
export function sessionOf(s: StudioState, previous: SavedSession['lastScores'] = null): SavedSession {
  const model = s.model.loaded?.summary;
  const result = s.score.result;
  return {
    settings: s.settings,
    planChoice: s.planChoice,
    lastScores: model && result && !s.score.restored ? { model: model.name, layers: model.numLayers, result } : previous,
  };
}

/** The saved scores apply when the loaded model has the same name and layer count. */
export function restorableScores(saved: SavedSession | null, modelName: string, layers: number): ScoredEvent | null {
  const last = saved?.lastScores;
  if (!last || last.model !== modelName || last.layers !== layers || last.result.scores.layerScores.length !== layers) return null;
  return last.result;
}

function open(): Promise<IDBDatabase | null> {
  if (typeof indexedDB === 'undefined') return Promise.resolve(null);
  return new Promise((resolve) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => resolve(null); // private mode or blocked storage: the studio works without it
  });
}

export async function loadSession(): Promise<SavedSession | null> {
  const db = await open();
  if (!db) return null;
  return new Promise((resolve) => {
    const req = db.transaction(STORE, 'readonly').objectStore(STORE).get(KEY);
    req.onsuccess = () => resolve((req.result as SavedSession | undefined) ?? null);
    req.onerror = () => resolve(null);
  });
}

let lastSaved: SavedSession | null = null;

export async function saveSession(): Promise<void> {
  const db = await open();
  if (!db) return;
  const session = sessionOf(useStudio.getState(), lastSaved?.lastScores ?? null);
  lastSaved = session;
  await new Promise<void>((resolve) => {
    const tx = db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).put(session, KEY);
    tx.oncomplete = () => resolve();
    tx.onerror = () => resolve();
  });
}

/** On start: settings and plan choice (with its metric) from the last visit. */
export async function restoreSession(): Promise<SavedSession | null> {
  const saved = await loadSession();
  lastSaved = saved;
  if (saved) useStudio.setState({ settings: { ...useStudio.getState().settings, ...saved.settings }, planChoice: saved.planChoice });
  return saved;
}

export const savedSession = (): SavedSession | null => lastSaved;
