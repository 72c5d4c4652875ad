// Step 3: the scoring settings, the worker's memory estimate for them, and the scoring run.

import type { ScoringSettings } from '../../nn/run-settings';
import type { PlanChoice, RequestOf } from '../../worker/protocol';
import { forgetSavedScores, loadSavedRun, restorableRun, restoredPlanChoice, saveSession } from '../persist';
import { emptyScore } from '../slices';
import { updateRun, useStudio } from '../store';
import { worker } from '../worker-connection';
import { findInterrupted } from './resume';
import { recovering, recoveringError, startRun } from './run';

const set = useStudio.setState;
const get = useStudio.getState;

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

export async function startScoring(): Promise<void> {
  await scoringRun({ type: 'score', settings: get().settings });
}

/** Continue the loaded pair's interrupted run from its last snapshot (the worker has its settings). */
export async function continueScoring(): Promise<void> {
  await scoringRun({ type: 'score', settings: {}, resume: true });
}

async function scoringRun(request: RequestOf<'score'>): Promise<void> {
  if (recovering()) {
    updateRun('score', () => ({ error: recoveringError('scoring again') }));
    return;
  }
  const result = await startRun('score', () => worker().request(request));
  if (!result) {
    if (get().score.error) void findInterrupted('score'); // a run cut short (a lost device) may continue from its last snapshot
    return;
  }
  const layers = result.scores.layerScores.length;
  // A first plan to look at: about a quarter of the layers, three merged at most.
  set((s) => {
    const prune = s.planChoice.prune > 0 && s.planChoice.prune < layers - 1 ? s.planChoice.prune : Math.max(1, Math.floor(layers / 4));
    return { planChoice: { ...s.planChoice, prune, merge: Math.min(s.planChoice.merge || Math.min(3, prune), prune) } };
  });
  void saveSession();
}

/** Which score ranks the layers (the plan's rankedBy): the paper's Σ F or the released code's Σ‖S‖_F. */
export function setMetric(metric: PlanChoice['rankedBy']): void {
  set((s) => ({ planChoice: { ...s.planChoice, rankedBy: metric } }));
  void saveSession();
}

/** The loaded (model, dataset) pair's fingerprints, or null until both are loaded. */
function loadedPair(): { model: string; dataset: string; layers: number } | null {
  const { model, dataset } = get();
  if (!model.loaded || !dataset.info || dataset.loading) return null;
  return { model: model.loaded.fingerprint, dataset: dataset.info.fingerprint, layers: model.loaded.summary.numLayers };
}

/**
 * When the loaded model and dataset are a pair seen before, offer its saved scores and plan choice back (shown as
 * restored, with the model and dataset they belong to) — unless a run or its result is already there.
 */
export async function restoreSavedRun(): Promise<void> {
  const pair = loadedPair();
  if (!pair) return;
  const saved = restorableRun(await loadSavedRun(pair.model, pair.dataset), pair.model, pair.dataset, pair.layers);
  const now = loadedPair();
  if (!saved?.scores || !now || now.model !== pair.model || now.dataset !== pair.dataset) return;
  const scores = saved.scores;
  set((s) => {
    if (s.score.state !== 'idle' || s.score.result) return s;
    const restoredFrom = { modelName: saved.modelName, datasetName: saved.datasetName, savedAt: saved.savedAt };
    return { score: { ...emptyScore(), result: scores, restored: true, restoredFrom, interrupted: s.score.interrupted }, planChoice: restoredPlanChoice(saved.planChoice) };
  });
}

/** Put the restored scores away for good (the plan choice stays saved for the pair). */
export async function discardSavedScores(): Promise<void> {
  const pair = loadedPair();
  if (!get().score.restored) return;
  set((s) => ({ score: { ...emptyScore(), interrupted: s.score.interrupted } }));
  if (pair) await forgetSavedScores(pair.model, pair.dataset);
}
