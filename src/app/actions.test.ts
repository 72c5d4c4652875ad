// The journey's actions against a scripted worker: each step's result, progress and failure land in its own
// slice; a new dataset or model clears what it makes stale; the plan choice stays valid.
import { beforeEach, describe, expect, it } from 'vitest';
import type { ModelConfig } from '../model/config';
import type { ModelSummary } from '../model/summary';
import type { ComparisonRow } from '../eval/before-after';
import type { DatasetInfo, PlanChoice, RecoveredEvent, ScoredEvent, WorkerEvent, WorkerRequest } from '../worker/protocol';
import { loadDatasetFile, setDatasetOptions } from './actions/dataset';
import { exportFolderName, prepareDownload, replaceFolder, saveExport, setExportAdapter, setExportFormat } from './actions/download';
import { loadModelFiles } from './actions/model';
import { applyPrune, updatePlanChoice } from './actions/prune';
import { startRecovery, updateRecoverSettings } from './actions/recover';
import { controlRun } from './actions/run';
import { discardSavedScores, restoreSavedRun, startScoring, updateSettings } from './actions/score';
import { DEFAULT_RECOVER_SETTINGS, DEFAULT_SETTINGS } from './defaults';
import { loadSavedRun, restorableRun, restoredPlanChoice, runRecordOf } from './persist';
import { initialState, useStudio } from './store';
import { createWorkerClient, type WorkerPort } from './worker-client';
import { connectWorker } from './worker-connection';

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

const info = (fileName: string, heldOut = 2) => ({ fileName, format: 'multiple-choice', heldOut, options: { maxSeqLen: 256, heldOut: 0.1, seed: 0 }, fingerprint: `ds-${fileName}` }) as DatasetInfo;
const scores = (layers: number[]) => ({ steps: 3, layerScores: layers, layerScoresCode: layers, moduleScores: layers.map(() => new Array(7).fill(0)) });
const scored = (id: number, layers: number[]): ScoredEvent => ({
  type: 'scored', requestId: id, scores: scores(layers), kendall: [NaN, 1, 1], losses: [6, 5.9, 5.8], stopped: false, settings: DEFAULT_SETTINGS, elapsedSeconds: 1, targetTokens: 30,
});

const row = (label: string, layers: number): ComparisonRow => ({
  label, layers, parameters: layers * 100, weightBytes: layers * 400, parameterRatio: layers / 6, msPerToken: layers, speedup: 6 / layers, heldOutLoss: 3, perplexity: Math.exp(3), acc: 0.5, accNorm: 0.5, storage: 'f32', residency: 'resident',
});
const recovered = (id: number): RecoveredEvent => ({
  type: 'recovered', requestId: id, settings: {} as RecoveredEvent['settings'], steps: 2, stopped: false, losses: [3.1, 3.0], trainExamples: 18, elapsedSeconds: 1,
  before: { loss: 3.2, perplexity: Math.exp(3.2), tokens: 40, rows: 4 }, after: { loss: 3.0, perplexity: Math.exp(3), tokens: 40, rows: 4 },
  table: [row('dense', 6), row('pruned', 4), row('pruned + recovered', 4)], adapterParameters: 100, adapterBytes: 400, precision: { storage: 'f32', reason: 'adapter has no shader-f16' },
});

function respondJourney(req: Req): WorkerEvent[] {
  switch (req.type) {
    case 'loadModel':
      return [{ type: 'modelLoaded', requestId: req.id, summary: { name: req.name, numLayers: 6 } as ModelSummary, config: { numLayers: 6 } as ModelConfig, fit: null, fingerprint: `fp-${req.name}` }];
    case 'loadDataset':
      return req.fileName === 'bad.csv'
        ? [{ type: 'error', requestId: req.id, error: { code: 'dataset', message: 'bad.csv: no dataset format fits its columns (a, b).', subject: 'bad.csv' } }]
        : [{ type: 'progress', requestId: req.id, stage: 'Tokenizing 24 examples' }, { type: 'datasetLoaded', requestId: req.id, dataset: info(req.fileName) }];
    case 'findSavedRun':
    case 'discardSavedRun':
      return [{ type: 'savedRun', requestId: req.id, run: null }];
    case 'setFormat':
      return req.options.format === 'text'
        ? [{ type: 'error', requestId: req.id, error: { code: 'dataset', message: 'needs a column for "text"' } }]
        : [{ type: 'datasetLoaded', requestId: req.id, dataset: { ...info('arc.jsonl', 6), options: req.options } }];
    case 'score':
      if (req.settings.steps === 0) return [{ type: 'error', requestId: req.id, error: { code: 'cancelled', message: 'Stopped before the first step.' } }];
      return [
        { type: 'scoreStep', requestId: req.id, step: 0, steps: 3, losses: [6], lr: 0, gradNorm: 1, tokensPerSecond: 10, elapsedSeconds: 1, etaSeconds: 2, scores: scores([0, 0, 0, 0, 0, 0]) },
        scored(req.id, [6, 5, 4, 3, 2, 1]),
      ];
    case 'pause':
      return [{ type: 'scoreControl', requestId: req.id, state: 'paused', holdsAfter: 3 }];
    case 'resume':
      return [{ type: 'scoreControl', requestId: req.id, state: 'running' }];
    case 'stop':
      return [{ type: 'scoreControl', requestId: req.id, state: 'stopping' }];
    case 'recover':
      return req.settings.lr > 1
        ? [{ type: 'error', requestId: req.id, error: { code: 'input', message: 'The learning rate is too large.' } }]
        : [
            { type: 'recoverStep', requestId: req.id, step: 0, steps: 2, losses: [3.1], lr: 1e-4, gradNorm: 1, epoch: 0.1, tokensPerSecond: 10, elapsedSeconds: 1, etaSeconds: 1 },
            recovered(req.id),
          ];
    case 'exportZip':
      return [{ type: 'exported', requestId: req.id, folderName: 'tiny-gradprune-4L-recovered', files: [], zip: new Blob([]), adapter: req.adapter ?? null }];
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

  it('a run stopped before its first step is back to idle with nothing to show and no error', async () => {
    await loadModelFiles([], 'tiny');
    await loadDatasetFile(new Blob(['x']), 'arc.jsonl');
    useStudio.setState((s) => ({ settings: { ...s.settings, steps: 0 } }));
    await startScoring();
    expect(useStudio.getState().score).toMatchObject({ state: 'idle', result: null, error: null, live: null });
    expect(useStudio.getState().activity).toBeNull();
  });

  it('keeps merge ≤ prune, and reports a failed prune under the prune step', async () => {
    updatePlanChoice({ prune: 3, merge: 3 });
    updatePlanChoice({ prune: 1 });
    expect(useStudio.getState().planChoice).toMatchObject({ prune: 1, merge: 1 });
    await applyPrune();
    expect(useStudio.getState().prune).toMatchObject({ applying: false, result: null, error: { code: 'memory' } });
    expect(sent.find((r) => r.type === 'applyPrune')).toMatchObject({ plan: { prune: 1, merge: 1, rankedBy: 'paper' } });
  });

  it("sends the chosen ranking to applyPrune; another method's plan goes without merging, IGIA's keeps its merge", async () => {
    updatePlanChoice({ prune: 2, merge: 2, rankedBy: 'last' });
    await applyPrune();
    expect(sent.filter((r) => r.type === 'applyPrune').at(-1)).toMatchObject({ plan: { prune: 2, merge: 0, rankedBy: 'last' } });
    updatePlanChoice({ rankedBy: 'magnitude' });
    await applyPrune();
    expect(sent.filter((r) => r.type === 'applyPrune').at(-1)).toMatchObject({ plan: { prune: 2, merge: 0, rankedBy: 'magnitude' } });
    updatePlanChoice({ rankedBy: 'code' });
    await applyPrune();
    expect(sent.filter((r) => r.type === 'applyPrune').at(-1)).toMatchObject({ plan: { prune: 2, merge: 2, rankedBy: 'code' } });
  });

  it('restores a saved plan choice: old rankings load as they were, an unknown one becomes the paper score', () => {
    const saved = { prune: 2, merge: 1, keepFraction: 0.3, protectLast: true };
    expect(restoredPlanChoice({ ...saved, rankedBy: 'code' })).toEqual({ ...saved, rankedBy: 'code' });
    expect(restoredPlanChoice({ ...saved, rankedBy: 'angular' })).toEqual({ ...saved, rankedBy: 'angular' });
    expect(restoredPlanChoice({ ...saved, rankedBy: 'taylor' } as unknown as PlanChoice)).toEqual({ ...saved, rankedBy: 'paper' });
  });

  it('passes pause to the worker and shows its answer, with the steps the run holds after (the step in flight included)', async () => {
    useStudio.setState((s) => ({ score: { ...s.score, state: 'running', live: { step: 1, steps: 3, losses: [6, 5.9], lr: 0, tokensPerSecond: 1, elapsedSeconds: 2, etaSeconds: 1 } } }));
    await controlRun('score', 'pause');
    expect(useStudio.getState().score).toMatchObject({ state: 'paused', pausedAt: 3 });
    await controlRun('score', 'resume');
    expect(useStudio.getState().score).toMatchObject({ state: 'running', pausedAt: null });
  });

  it('fine-tunes with live steps and shows the three-row table; a failure lands in the recover slice', async () => {
    updateRecoverSettings({ steps: 2, seqLen: 32 });
    const seen: string[] = [];
    const unsubscribe = useStudio.subscribe((s) => seen.push(s.recover.state));
    await startRecovery();
    unsubscribe();
    expect(seen).toContain('running');
    const s = useStudio.getState();
    expect(s.recover).toMatchObject({ state: 'idle', error: null, live: { step: 0, steps: 2, losses: [3.1] } });
    expect(s.recover.result?.table.map((r) => r.layers)).toEqual([6, 4, 4]);
    expect(sent.find((r) => r.type === 'recover')).toMatchObject({ settings: { ...DEFAULT_RECOVER_SETTINGS, steps: 2, seqLen: 32 }, evaluation: { maxExamples: s.evaluateOptions.maxExamples } });
    expect(s.activity).toBeNull();

    updateRecoverSettings({ lr: 2 });
    await startRecovery();
    expect(useStudio.getState().recover).toMatchObject({ state: 'idle', result: null, error: { message: 'The learning rate is too large.' } });
  });

  it('stops a recovery run through the shared run control; scoring or pruning meanwhile is refused in the page', async () => {
    useStudio.setState((s) => ({ recover: { ...s.recover, state: 'running' } }));
    await startScoring();
    await applyPrune();
    expect(sent.some((r) => r.type === 'score' || r.type === 'applyPrune')).toBe(false);
    expect(useStudio.getState().score.error?.message).toMatch(/recovery fine-tuning is running/);
    expect(useStudio.getState().prune.error?.message).toMatch(/recovery fine-tuning is running/);
    expect(useStudio.getState().recover.state).toBe('running');
    await controlRun('recover', 'stop');
    expect(useStudio.getState().recover.state).toBe('stopping');
    expect(useStudio.getState().score.state).toBe('idle');
  });

  it('exports with the chosen adapter and format; changing either drops the prepared zip; a new prune drops the recovery', async () => {
    await startRecovery();
    await prepareDownload();
    expect(sent.filter((r) => r.type === 'exportZip').at(-1)).toMatchObject({ adapter: 'merged' });
    expect(useStudio.getState().download.result).not.toBeNull();
    setExportAdapter('peft');
    expect(useStudio.getState().download.result).toBeNull();
    await prepareDownload();
    expect(sent.filter((r) => r.type === 'exportZip').at(-1)).toMatchObject({ adapter: 'peft' });
    expect(useStudio.getState().download.result?.adapter).toBe('peft');
    setExportFormat('onnx');
    expect(useStudio.getState().download.result).toBeNull();
    await prepareDownload();
    expect(sent.filter((r) => r.type === 'exportZip').at(-1)).toMatchObject({ format: 'onnx' });
    setExportFormat('gguf'); // one file, its own panel: the folder downloads write the safetensors checkpoint
    await prepareDownload();
    expect(sent.filter((r) => r.type === 'exportZip').at(-1)).toMatchObject({ format: 'safetensors' });
    await applyPrune();
    expect(useStudio.getState().recover.result).toBeNull();
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
  const reload = () => useStudio.setState(initialState(), true);

  it('ties scores and plan to the (model, dataset) pair and settings to the model; offers them back for that pair only', async () => {
    await loadModelFiles([], 'kept');
    await loadDatasetFile(new Blob(['x']), 'kept.jsonl');
    updateSettings({ steps: 3, seqLen: 96 });
    await startScoring();
    const planned = useStudio.getState().planChoice;
    const record = runRecordOf(useStudio.getState(), null);
    expect(record).toMatchObject({ modelFingerprint: 'fp-kept', datasetFingerprint: 'ds-kept.jsonl', modelName: 'kept', datasetName: 'kept.jsonl' });
    expect(JSON.stringify(record).length).toBeLessThan(10_000); // small: no weights, no dataset
    expect(restorableRun(record, 'fp-kept', 'ds-kept.jsonl', 5)).toBeNull(); // another layer count
    expect(restorableRun(record, 'fp-kept', 'ds-other.jsonl', 6)).toBeNull();

    reload();
    await loadModelFiles([], 'kept');
    expect(useStudio.getState().settings).toMatchObject({ steps: 3, seqLen: 96 }); // the model's own settings
    await loadDatasetFile(new Blob(['x']), 'kept.jsonl');
    await restoreSavedRun();
    expect(useStudio.getState().score).toMatchObject({ restored: true, restoredFrom: { modelName: 'kept', datasetName: 'kept.jsonl' } });
    expect(useStudio.getState().score.result?.scores.layerScores).toEqual([6, 5, 4, 3, 2, 1]);
    expect(useStudio.getState().planChoice).toEqual(planned);

    // Another dataset for the same model: the scores are not offered.
    await loadDatasetFile(new Blob(['y']), 'other.jsonl');
    await restoreSavedRun();
    expect(useStudio.getState().score).toMatchObject({ restored: false, result: null });

    // Another model: the defaults, not the first model's settings.
    await loadModelFiles([], 'fresh');
    expect(useStudio.getState().settings).toEqual(DEFAULT_SETTINGS);
  });

  it('discarded scores are not offered again', async () => {
    await loadModelFiles([], 'gone');
    await loadDatasetFile(new Blob(['x']), 'gone.jsonl');
    await startScoring();
    reload();
    await loadModelFiles([], 'gone');
    await loadDatasetFile(new Blob(['x']), 'gone.jsonl');
    await restoreSavedRun();
    expect(useStudio.getState().score.restored).toBe(true);
    await discardSavedScores();
    expect(useStudio.getState().score.result).toBeNull();
    expect((await loadSavedRun('fp-gone', 'ds-gone.jsonl'))?.scores).toBeNull();
    await restoreSavedRun();
    expect(useStudio.getState().score.result).toBeNull();
  });
});

describe('the download step (folder names, and a folder that already holds a checkpoint)', () => {
  /** A picked folder as Chromium gives it, holding `<name>/` with `files` (only what the question needs). */
  function pickedFolder(name: string, held: Record<string, string[]>) {
    const missing = () => Object.assign(new Error('not found'), { name: 'NotFoundError' });
    const folder = (n: string, files: string[]) => ({
      kind: 'directory' as const,
      name: n,
      getDirectoryHandle: async () => Promise.reject(missing()),
      getFileHandle: async () => Promise.reject(missing()),
      removeEntry: async () => undefined,
      async *values() {
        for (const f of files) yield { kind: 'file' as const, name: f };
      },
    });
    return {
      ...folder(name, []),
      getDirectoryHandle: async (n: string) => (held[n] ? folder(n, held[n]) : Promise.reject(missing())),
    } as unknown as FileSystemDirectoryHandle;
  }
  const withPicker = (handle: FileSystemDirectoryHandle) => {
    (globalThis as { window?: unknown }).window = { showDirectoryPicker: async () => handle };
    return () => delete (globalThis as { window?: unknown }).window;
  };
  const prunedTo = (kept: number) => useStudio.setState((s) => ({ prune: { ...s.prune, result: { plan: { kept: Array.from({ length: kept }, (_, i) => i) } } as unknown as typeof s.prune.result } }));

  it('names each variant apart: pruned, recovered with the adapter merged, recovered with a PEFT adapter', async () => {
    await loadModelFiles([], 'tiny');
    prunedTo(4);
    expect(exportFolderName()).toBe('tiny-gradprune-4L');
    await startRecovery();
    expect(exportFolderName()).toBe('tiny-gradprune-4L-recovered');
    setExportAdapter('peft');
    expect(exportFolderName()).toBe('tiny-gradprune-4L-recovered-peft');
    setExportFormat('onnx'); // no separate adapter in ONNX: the recovered model, merged
    expect(exportFolderName()).toBe('tiny-gradprune-4L-recovered-onnx');
  });

  it('asks before replacing a folder that holds files, and writes only after Replace (with overwrite)', async () => {
    await loadModelFiles([], 'tiny');
    prunedTo(4);
    const restore = withPicker(pickedFolder('Downloads', { 'tiny-gradprune-4L': ['config.json', 'model.safetensors'] }));
    try {
      const question = await saveExport('folder');
      expect(question).toMatchObject({ folder: 'Downloads/tiny-gradprune-4L', files: ['config.json', 'model.safetensors'] });
      expect(sent.filter((r) => r.type === 'exportZip')).toEqual([]);
      await replaceFolder(question!);
      expect(sent.filter((r) => r.type === 'exportZip').at(-1)).toMatchObject({ target: { kind: 'folder', overwrite: true } });
    } finally {
      restore();
    }
  });

  it('writes at once, without overwrite, where the picked folder has no folder of that name', async () => {
    await loadModelFiles([], 'tiny');
    prunedTo(4);
    const restore = withPicker(pickedFolder('Downloads', { 'other-model': ['config.json'] }));
    try {
      expect(await saveExport('folder')).toBeNull();
      const req = sent.filter((r) => r.type === 'exportZip').at(-1) as Extract<Req, { type: 'exportZip' }>;
      expect(req.target).toMatchObject({ kind: 'folder' });
      expect((req.target as { overwrite?: boolean }).overwrite).toBeUndefined();
    } finally {
      restore();
    }
  });

  it("another model's load ends the demo: its dataset note goes", async () => {
    useStudio.setState({ demoDataset: { name: 'arc_easy_300.jsonl', bytes: 10, rows: 300, blob: new Blob(['x']) } });
    await loadModelFiles([], 'mine');
    expect(useStudio.getState().demoDataset).toBeNull();
  });
});
