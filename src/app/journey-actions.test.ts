// The journey's actions against a scripted worker: each step's result, progress and failure land in its own
// slice; a new dataset or model clears what it makes stale; the plan choice stays valid.
import { beforeEach, describe, expect, it } from 'vitest';
import type { ModelConfig } from '../model/config';
import type { ModelSummary } from '../model/summary';
import type { DatasetInfo, ScoredEvent, WorkerEvent, WorkerRequest } from '../worker/protocol';
import { connectWorker, loadModelFiles } from './actions';
import { DEFAULT_SETTINGS } from './defaults';
import { applyPrune, controlScoring, loadDatasetFile, setDatasetOptions, startScoring, updatePlanChoice } from './journey-actions';
import { restorableScores, sessionOf } from './persist';
import { initialState, useStudio } from './store';
import { createWorkerClient, type WorkerPort } from './worker-client';

type Req = WorkerRequest & { id: number };

function scriptedWorker(respond: (req: Req) => WorkerEvent[]) {
  const listeners: Array<(ev: Event) => void> = [];
  const sent: Req[] = [];
  const port: WorkerPort = {
    postMessage: (m) => {
      sent.push(m as Req);
      const events = respond(m as Req);
      setTimeout(() => events.forEach((data) => listeners.forEach((l) => l({ data } as MessageEvent))), 0);
    },
    addEventListener: (type, l) => void (type === 'message' && listeners.push(l)),
  };
  return { client: createWorkerClient(port), sent };
}

const info = (fileName: string, heldOut = 2) => ({ fileName, format: 'multiple-choice', heldOut, options: { maxSeqLen: 256, heldOut: 0.1, seed: 0 } }) as DatasetInfo;
const scores = (layers: number[]) => ({ steps: 3, layerScores: layers, layerScoresCode: layers, moduleScores: layers.map(() => new Array(7).fill(0)) });
const scored = (id: number, layers: number[]): ScoredEvent => ({
  type: 'scored', requestId: id, scores: scores(layers), kendall: [NaN, 1, 1], losses: [6, 5.9, 5.8], stopped: false, settings: DEFAULT_SETTINGS, elapsedSeconds: 1, targetTokens: 30,
});

function respondJourney(req: Req): WorkerEvent[] {
  switch (req.type) {
    case 'loadModel':
      return [{ type: 'modelLoaded', requestId: req.id, summary: { name: req.name, numLayers: 6 } as ModelSummary, config: { numLayers: 6 } as ModelConfig, fit: null }];
    case 'loadDataset':
      return req.fileName === 'bad.csv'
        ? [{ type: 'error', requestId: req.id, error: { code: 'dataset', message: 'bad.csv: no dataset format fits its columns (a, b).', subject: 'bad.csv' } }]
        : [{ type: 'progress', requestId: req.id, stage: 'Tokenizing 24 examples' }, { type: 'datasetLoaded', requestId: req.id, dataset: info(req.fileName) }];
    case 'setFormat':
      return req.options.format === 'text'
        ? [{ type: 'error', requestId: req.id, error: { code: 'dataset', message: 'needs a column for "text"' } }]
        : [{ type: 'datasetLoaded', requestId: req.id, dataset: { ...info('arc.jsonl', 6), options: req.options } }];
    case 'score':
      return [
        { type: 'scoreStep', requestId: req.id, step: 0, steps: 3, losses: [6], lr: 0, gradNorm: 1, tokensPerSecond: 10, elapsedSeconds: 1, etaSeconds: 2, scores: scores([0, 0, 0, 0, 0, 0]) },
        scored(req.id, [6, 5, 4, 3, 2, 1]),
      ];
    case 'pause':
      return [{ type: 'scoreControl', requestId: req.id, state: 'paused' }];
    case 'applyPrune':
      return [{ type: 'error', requestId: req.id, error: { code: 'memory', message: 'does not fit' } }];
    default:
      return [];
  }
}

let sent: Req[] = [];
let disconnect = () => {};
beforeEach(() => {
  useStudio.setState(initialState(), true);
  const w = scriptedWorker(respondJourney);
  sent = w.sent;
  disconnect();
  disconnect = connectWorker(w.client);
});

describe('journey actions', () => {
  it('shows a dataset, then a failed re-read beside the previous reading, then a new one', async () => {
    await loadModelFiles([], 'tiny');
    await loadDatasetFile(new Blob(['x']), 'arc.jsonl');
    expect(useStudio.getState().dataset).toMatchObject({ loading: null, error: null, info: { fileName: 'arc.jsonl' } });
    // The scoring sequence length is what the dataset is tokenized for.
    expect(sent.find((r) => r.type === 'loadDataset')).toMatchObject({ options: { maxSeqLen: DEFAULT_SETTINGS.seqLen, heldOut: 0.1 } });
    await setDatasetOptions({ format: 'text' });
    expect(useStudio.getState().dataset).toMatchObject({ info: { fileName: 'arc.jsonl' }, error: { message: 'needs a column for "text"' } });
    await setDatasetOptions({ format: 'multiple-choice', heldOut: 0.25 });
    expect(useStudio.getState().dataset).toMatchObject({ error: null, info: { heldOut: 6, options: { heldOut: 0.25, format: 'multiple-choice' } } });
    expect(useStudio.getState().activity).toBeNull();
  });

  it('puts a dataset failure under the dataset step', async () => {
    await loadModelFiles([], 'tiny');
    await loadDatasetFile(new Blob(['a,b']), 'bad.csv');
    expect(useStudio.getState().dataset).toMatchObject({ info: null, error: { code: 'dataset', subject: 'bad.csv' } });
  });

  it('scores with live steps, then offers a first plan; a new dataset clears the scores', async () => {
    await loadModelFiles([], 'tiny');
    await loadDatasetFile(new Blob(['x']), 'arc.jsonl');
    const seen: string[] = [];
    const unsubscribe = useStudio.subscribe((s) => seen.push(s.score.state));
    await startScoring();
    unsubscribe();
    const s = useStudio.getState();
    expect(seen).toContain('running');
    expect(s.score).toMatchObject({ state: 'idle', error: null, live: { step: 0, steps: 3 } });
    expect(s.score.snapshots).toHaveLength(1);
    expect(s.score.result?.scores.layerScores).toEqual([6, 5, 4, 3, 2, 1]);
    // A quarter of 6 layers, rounded down, with at most 3 merged.
    expect(s.planChoice).toMatchObject({ prune: 1, merge: 1 });
    await loadDatasetFile(new Blob(['x']), 'other.jsonl');
    expect(useStudio.getState().score.result).toBeNull();
  });

  it('keeps merge ≤ prune, and reports a failed prune under the prune step', async () => {
    updatePlanChoice({ prune: 3, merge: 3 });
    updatePlanChoice({ prune: 1 });
    expect(useStudio.getState().planChoice).toMatchObject({ prune: 1, merge: 1 });
    await applyPrune();
    expect(useStudio.getState().prune).toMatchObject({ applying: false, result: null, error: { code: 'memory' } });
    expect(sent.find((r) => r.type === 'applyPrune')).toMatchObject({ plan: { prune: 1, merge: 1, rankedBy: 'paper' } });
  });

  it('passes pause to the worker and shows its answer', async () => {
    useStudio.setState((s) => ({ score: { ...s.score, state: 'running' } }));
    await controlScoring('pause');
    expect(useStudio.getState().score.state).toBe('paused');
  });

  it('a new model clears every later step', async () => {
    await loadModelFiles([], 'tiny');
    await loadDatasetFile(new Blob(['x']), 'arc.jsonl');
    await startScoring();
    await loadModelFiles([], 'other');
    const s = useStudio.getState();
    expect(s.dataset.info).toBeNull();
    expect(s.score.result).toBeNull();
  });
});

describe('what survives a reload', () => {
  it('saves settings, plan and the last scores, and restores the scores for the same model only', async () => {
    await loadModelFiles([], 'tiny');
    await loadDatasetFile(new Blob(['x']), 'arc.jsonl');
    await startScoring();
    const saved = sessionOf(useStudio.getState());
    expect(saved.lastScores).toMatchObject({ model: 'tiny', layers: 6 });
    expect(JSON.stringify(saved).length).toBeLessThan(10_000); // small: no weights, no dataset
    expect(restorableScores(saved, 'tiny', 6)?.scores.layerScores).toEqual([6, 5, 4, 3, 2, 1]);
    expect(restorableScores(saved, 'tiny', 5)).toBeNull();
    expect(restorableScores(saved, 'other', 6)).toBeNull();
  });
});
