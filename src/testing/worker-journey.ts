// A short studio journey through the worker host for the gpu tests (Node, real Dawn device): tiny-llama and 20
// ARC-Easy rows → score → prune → Check → Recover, with every upload of weights to the GPU counted.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { vi } from 'vitest';
import type { Gpu } from '../gpu/device';
import { requestGpu } from '../gpu/device';
import { openFolder } from '../model/node-files';
import { ModelWeights } from '../nn/weights';
import { DATASETS, fixtureDir } from './paths';
import { createWorkerHost } from '../worker/host';
import type { FileEntry, WorkerEvent, WorkerRequest } from '../worker/protocol';

export const ARC_ROWS = readFileSync(path.join(DATASETS, 'arc/arc_easy.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 20);

export async function folderEntries(name: string): Promise<FileEntry[]> {
  return [...(await openFolder(fixtureDir(name)))].map(([n, blob]) => ({ name: n, blob }));
}

/**
 * A worker host on real Dawn devices: its events, every device it asked for (for the test to destroy), a request's
 * result event by type (throwing with the error events it got instead) and its error event.
 */
export function hostWithDevices() {
  const events: WorkerEvent[] = [];
  const devices: Gpu[] = [];
  const host = createWorkerHost((e) => events.push(e), {
    requestGpu: async () => {
      const gpu = await requestGpu();
      devices.push(gpu);
      return gpu;
    },
  });
  const result = <T extends WorkerEvent['type']>(type: T, id: number) => {
    const errors = events.filter((e) => e.type === 'error' && e.requestId === id);
    if (errors.length) throw new Error(`request ${id} failed: ${JSON.stringify(errors)}`);
    const e = events.find((x) => x.type === type && 'requestId' in x && x.requestId === id);
    if (!e) throw new Error(`no ${type} for request ${id}`);
    return e as Extract<WorkerEvent, { type: T }>;
  };
  const errorOf = (id: number) => events.find((e) => e.type === 'error' && e.requestId === id);
  return { host, events, devices, result, errorOf };
}

/** A worker host whose every ModelWeights.load is recorded (which model, storage, residency), and its events. */
export function countingHost() {
  const { host, events, devices } = hostWithDevices();
  const uploads: { layers: number; storage: string; residency: string }[] = [];
  const real = ModelWeights.load.bind(ModelWeights);
  const spy = vi.spyOn(ModelWeights, 'load').mockImplementation(async (gpu, config, store, opts) => {
    uploads.push({ layers: config.numLayers, storage: opts.storage, residency: opts.residency });
    return real(gpu, config, store, opts);
  });
  let next = 1;
  /** Send a request and return its result event (throws with the error event when it failed). */
  const request = async <T extends WorkerEvent['type']>(type: T, req: WorkerRequest): Promise<Extract<WorkerEvent, { type: T }>> => {
    const id = next++;
    await host.handle({ ...req, id });
    const error = events.find((e) => e.type === 'error' && e.requestId === id);
    if (error) throw new Error(`${req.type} failed: ${JSON.stringify(error)}`);
    const e = events.find((x) => x.type === type && 'requestId' in x && x.requestId === id);
    if (!e) throw new Error(`no ${type} for ${req.type}`);
    return e as Extract<WorkerEvent, { type: T }>;
  };
  return { host, events, uploads, devices, request, restore: () => spy.mockRestore() };
}

/** tiny-llama with the ARC rows (4 held out), scored 3 steps and pruned by 2 layers with 1 merged. */
export async function scoredAndPruned(h: ReturnType<typeof countingHost>) {
  await h.request('modelLoaded', { type: 'loadModel', name: 'tiny-llama', files: await folderEntries('tiny-llama') });
  const file = new Blob([ARC_ROWS.join('\n') + '\n']);
  await h.request('datasetLoaded', { type: 'loadDataset', file, fileName: 'arc.jsonl', options: { maxSeqLen: 128, heldOut: 4, seed: 0 } });
  const scored = await h.request('scored', { type: 'score', settings: { steps: 3, batchSize: 2, seqLen: 128 } });
  const pruned = await h.request('pruned', { type: 'applyPrune', plan: { prune: 2, merge: 1, keepFraction: 0.2, protectLast: false, rankedBy: 'paper' } });
  return { scored, pruned };
}

export const RECOVER_SETTINGS = { by: 'steps', steps: 2, epochs: 1, rank: 4, alpha: 8, lr: 1e-3, batchSize: 2, seqLen: 128, schedule: 'constant' } as const;
