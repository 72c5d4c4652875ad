import { beforeEach, describe, expect, it } from 'vitest';
import type { AdapterSummary } from '../gpu/device';
import type { ModelConfig } from '../model/config';
import type { ModelSummary } from '../model/summary';
import type { WorkerEvent, WorkerRequest } from '../worker/protocol';
import { loadModelFiles, loadPickedFiles } from './actions/model';
import { initialState, resetAfter, useStudio } from './store';
import { createWorkerClient, type WorkerPort } from './worker-client';
import { connectWorker } from './worker-connection';
import { applyWorkerEvent } from './worker-events';

const adapter = { name: 'test adapter', maxBufferSize: 1 << 30 } as AdapterSummary;
const summary = (name: string) => ({ name, numLayers: 2 }) as ModelSummary;
const config = { numLayers: 2 } as ModelConfig;

/** A scripted worker: answers each request through `respond`, asynchronously, like the real one. */
function scriptedWorker(respond: (req: WorkerRequest & { id: number }) => WorkerEvent[], delayMs: (req: WorkerRequest) => number = () => 0) {
  const listeners: Array<(ev: Event) => void> = [];
  const port: WorkerPort = {
    postMessage: (m) => {
      const events = respond(m as WorkerRequest & { id: number });
      setTimeout(() => events.forEach((data) => listeners.forEach((l) => l({ data } as MessageEvent))), delayMs(m as WorkerRequest));
    },
    addEventListener: (type, l) => void (type === 'message' && listeners.push(l)),
  };
  return createWorkerClient(port);
}

beforeEach(() => useStudio.setState(initialState(), true));

describe('store: worker events', () => {
  it('tracks the adapter, a lost device and no WebGPU', () => {
    applyWorkerEvent({ type: 'adapter', requestId: null, adapter });
    expect(useStudio.getState().gpu).toEqual({ state: 'ready', adapter });
    const lost = { code: 'gpu' as const, message: 'The GPU device was lost.' };
    applyWorkerEvent({ type: 'deviceLost', requestId: null, error: lost });
    expect(useStudio.getState().gpu).toEqual({ state: 'lost', adapter, error: lost });
    const none = { code: 'gpu' as const, message: 'This browser has no WebGPU.' };
    applyWorkerEvent({ type: 'adapter', requestId: 3, adapter: null, error: none });
    expect(useStudio.getState().gpu).toEqual({ state: 'unavailable', error: none });
  });

  it('shows failures outside any request as a notice', () => {
    applyWorkerEvent({ type: 'error', requestId: null, error: { code: 'internal', message: 'boom' } });
    expect(useStudio.getState().notice?.message).toBe('boom');
    applyWorkerEvent({ type: 'error', requestId: 9, error: { code: 'file', message: 'belongs to a request' } });
    expect(useStudio.getState().notice?.message).toBe('boom');
  });
});

describe('actions: loading a model', () => {
  it('shows the summary of a loaded model, then an error for a bad one beside it (the loaded one stays), then a good one again', async () => {
    const disconnect = connectWorker(
      scriptedWorker((req) =>
        req.type === 'loadModel' && req.name === 'bad'
          ? [{ type: 'error', requestId: req.id, error: { code: 'file', message: 'model.safetensors: truncated', subject: 'model.safetensors' } }]
          : [{ type: 'modelLoaded', requestId: req.id, summary: summary(req.type === 'loadModel' ? req.name : '?'), config, fit: null, fingerprint: 'fp' }],
      ),
    );
    await loadModelFiles([], 'good');
    expect(useStudio.getState().model).toMatchObject({ loading: null, error: null, loaded: { summary: { name: 'good' } } });
    useStudio.setState({ dataset: { loading: null, info: { fileName: 'd.jsonl' } as never, error: null } });
    await loadModelFiles([], 'bad', 'the 4 chosen files');
    expect(useStudio.getState().dataset.info?.fileName).toBe('d.jsonl'); // a failed load throws nothing away
    expect(useStudio.getState().model).toMatchObject({
      loading: null,
      loaded: { summary: { name: 'good' } },
      error: { source: 'the 4 chosen files', info: { subject: 'model.safetensors' } },
    });
    await loadModelFiles([], 'again');
    expect(useStudio.getState().model).toMatchObject({ error: null, loaded: { summary: { name: 'again' } } });
    disconnect();
  });

  it('lets the latest of two overlapping loads win, even when the earlier one finishes last', async () => {
    const disconnect = connectWorker(
      scriptedWorker(
        (req) => [{ type: 'modelLoaded', requestId: req.id, summary: summary(req.type === 'loadModel' ? req.name : '?'), config, fit: null, fingerprint: 'fp' }],
        (req) => (req.type === 'loadModel' && req.name === 'first' ? 30 : 0),
      ),
    );
    const first = loadModelFiles([], 'first');
    const second = loadModelFiles([], 'second');
    await Promise.all([first, second]);
    expect(useStudio.getState().model.loaded?.summary.name).toBe('second');
    disconnect();
  });

  it('flattens picked files and names the model after the folder', async () => {
    const names: string[][] = [];
    const disconnect = connectWorker(
      scriptedWorker((req) => {
        if (req.type !== 'loadModel') return [];
        names.push(req.files.map((f) => f.name).sort());
        return [{ type: 'modelLoaded', requestId: req.id, summary: summary(req.name), config, fit: null, fingerprint: 'fp' }];
      }),
    );
    await loadPickedFiles([
      { path: 'tiny/config.json', blob: new Blob(['{}']) },
      { path: 'tiny/reference/config.json', blob: new Blob(['{"deep":1}']) },
      { path: 'tiny/model.safetensors', blob: new Blob([]) },
    ]);
    expect(names).toEqual([['config.json', 'model.safetensors']]);
    expect(useStudio.getState().model.loaded?.summary.name).toBe('tiny');
    disconnect();
  });

  it('says so when nothing was dropped', async () => {
    await loadPickedFiles([]);
    expect(useStudio.getState().model.error?.info.message).toMatch(/no files were dropped/);
  });
});

describe('store: resetAfter', () => {
  /** A session with a result in every step and choices away from the defaults. */
  function everyStepDone() {
    useStudio.setState({
      model: { loading: null, loaded: { summary: summary('m'), config, fit: null, fingerprint: 'fp' }, error: null },
      dataset: { loading: null, info: { fileName: 'd.jsonl' } as never, error: null },
      score: { ...useStudio.getState().score, result: { type: 'scored' } as never },
      prune: { applying: false, result: { type: 'pruned' } as never, error: null },
      check: { running: false, result: { type: 'evaluated' } as never, error: null },
      custom: { running: false, rows: [{ prompt: 'p', dense: 'a', pruned: 'b' }], error: null },
      recover: { ...useStudio.getState().recover, result: { type: 'recovered' } as never },
      download: { running: false, result: { type: 'exported' } as never, error: null, saved: 'x' },
      planChoice: { prune: 2, merge: 1, keepFraction: 0.3, protectLast: true, rankedBy: 'code' },
      exportAdapter: 'peft',
    });
  }
  const done = () => {
    const s = useStudio.getState();
    return { model: !!s.model.loaded, dataset: !!s.dataset.info, score: !!s.score.result, prune: !!s.prune.result, check: !!s.check.result, custom: s.custom.rows.length > 0, recover: !!s.recover.result, download: !!s.download.result };
  };

  it('starts every step after the given one afresh and keeps the choices', () => {
    everyStepDone();
    useStudio.setState(resetAfter('score'));
    expect(done()).toEqual({ model: true, dataset: true, score: true, prune: false, check: false, custom: false, recover: false, download: false });
    expect(useStudio.getState().planChoice).toEqual({ prune: 2, merge: 1, keepFraction: 0.3, protectLast: true, rankedBy: 'code' });
    expect(useStudio.getState().exportAdapter).toBe('peft');

    everyStepDone();
    useStudio.setState(resetAfter('model'));
    expect(done()).toEqual({ model: true, dataset: false, score: false, prune: false, check: false, custom: false, recover: false, download: false });

    everyStepDone();
    useStudio.setState(resetAfter('recover'));
    expect(done()).toEqual({ model: true, dataset: true, score: true, prune: true, check: true, custom: true, recover: true, download: false });
    expect(resetAfter('download')).toEqual({});
  });
});

describe('store: run steps', () => {
  it('a recovery step turns a starting run into a running one, with its epoch and progress', () => {
    useStudio.setState({ recover: { ...useStudio.getState().recover, state: 'starting' }, activity: { step: 'recover', stage: 'Starting' } });
    applyWorkerEvent({ type: 'recoverStep', requestId: 4, step: 1, steps: 4, losses: [3.2, 3.1], lr: 1e-4, gradNorm: 1, epoch: 0.5, tokensPerSecond: 9, elapsedSeconds: 2, etaSeconds: 4 });
    const s = useStudio.getState();
    expect(s.recover).toMatchObject({ state: 'running', live: { step: 1, steps: 4, epoch: 0.5, losses: [3.2, 3.1] } });
    expect(s.activity).toEqual({ step: 'recover', stage: 'Step 2 of 4', fraction: 0.5 });
    expect(s.score.state).toBe('idle');
  });
});
