import { beforeEach, describe, expect, it } from 'vitest';
import type { AdapterSummary } from '../gpu/device';
import type { ModelConfig } from '../model/config';
import type { ModelSummary } from '../model/summary';
import type { WorkerEvent, WorkerRequest } from '../worker/protocol';
import { connectWorker, loadModelFiles, loadPickedFiles } from './actions';
import { applyWorkerEvent, initialState, useStudio } from './store';
import { createWorkerClient, type WorkerPort } from './worker-client';

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
  it('shows the summary of a loaded model, then an error for a bad one, then a good one again', async () => {
    const disconnect = connectWorker(
      scriptedWorker((req) =>
        req.type === 'loadModel' && req.name === 'bad'
          ? [{ type: 'error', requestId: req.id, error: { code: 'file', message: 'model.safetensors: truncated', subject: 'model.safetensors' } }]
          : [{ type: 'modelLoaded', requestId: req.id, summary: summary(req.type === 'loadModel' ? req.name : '?'), config, fit: null }],
      ),
    );
    await loadModelFiles([], 'good');
    expect(useStudio.getState().model).toMatchObject({ loading: null, error: null, loaded: { summary: { name: 'good' } } });
    await loadModelFiles([], 'bad', 'the 4 chosen files');
    expect(useStudio.getState().model).toMatchObject({
      loading: null,
      loaded: null,
      error: { source: 'the 4 chosen files', info: { subject: 'model.safetensors' } },
    });
    await loadModelFiles([], 'again');
    expect(useStudio.getState().model).toMatchObject({ error: null, loaded: { summary: { name: 'again' } } });
    disconnect();
  });

  it('lets the latest of two overlapping loads win, even when the earlier one finishes last', async () => {
    const disconnect = connectWorker(
      scriptedWorker(
        (req) => [{ type: 'modelLoaded', requestId: req.id, summary: summary(req.type === 'loadModel' ? req.name : '?'), config, fit: null }],
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
        return [{ type: 'modelLoaded', requestId: req.id, summary: summary(req.name), config, fit: null }];
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
