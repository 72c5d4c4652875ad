// Node only (the gpu tier and `npm run bench`): a long LoRA run on a fixture model through the real run loop
// (nn/lora-run.ts runLoraRun), with the live GPU buffers, their bytes and the JS heap sampled every few steps, to
// show that nothing grows with the number of steps. Live buffers are counted by wrapping the device's createBuffer
// and each buffer's destroy for the length of the run: the engine has no allocation counter of its own that sees
// every buffer (uniforms, staging, readbacks, the trainer's and optimizer's own).

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { TokenBatch } from '../data/types';
import type { Gpu } from '../gpu/device';
import { runLoraRun } from '../nn/lora-run';
import { fixtureRunBatches, loadFixtureModel, openReference } from '../nn/reference/fixture';
import { DEFAULT_SCORING_SETTINGS, resolveScoringSettings } from '../nn/run-settings';
import { fixtureDir } from './paths';

export interface LongRunSample {
  /** Steps finished when the sample was taken. */
  step: number;
  liveBuffers: number;
  liveBufferBytes: number;
  /** process.memoryUsage().heapUsed after a full collection (when one could be forced). */
  heapBytes: number;
}

export interface LongRunResult {
  fixture: string;
  /** B rows of T tokens a step (the first B of the recorded batches' recordedB rows), cycling through `distinct` batches. */
  batch: { B: number; T: number; distinct: number; recordedB: number };
  /** The first sample is taken after step 1 (pipelines, bind groups and staging exist by then), then every `every` steps. */
  samples: LongRunSample[];
  losses: number[];
  /**
   * What the run left allocated once it returned: it destroys everything it made, except what is made once per
   * device and shared by every job on it (the kernel library's 'unused' placeholder, when this run made the library).
   */
  afterRun: { liveBuffers: number; liveBufferBytes: number; labels: string[] };
  /** Whether global.gc could be forced before each heap sample (otherwise heap numbers include garbage). */
  gcForced: boolean;
}

/** A forced full collection: global.gc when Node runs with --expose-gc, else the flag set at run time. */
function exposedGc(): (() => void) | null {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return null;
  }
}

/** Counts the device's live buffers and bytes until `restore()`: every createBuffer adds, its destroy subtracts. */
function countBuffers(device: GPUDevice) {
  const live = new Map<GPUBuffer, number>();
  const createBuffer = device.createBuffer;
  device.createBuffer = function (descriptor: GPUBufferDescriptor): GPUBuffer {
    const buffer = createBuffer.call(device, descriptor);
    live.set(buffer, buffer.size);
    const destroy = buffer.destroy;
    buffer.destroy = function (): undefined {
      live.delete(buffer);
      return destroy.call(buffer);
    };
    return buffer;
  };
  return {
    count: () => live.size,
    bytes: () => [...live.values()].reduce((n, size) => n + size, 0),
    labels: () => [...live.keys()].map((b) => b.label),
    restore: () => {
      device.createBuffer = createBuffer;
    },
  };
}

/**
 * `steps` LoRA steps (the scoring defaults: rank 8, all modules, AdamW, clip 1) on `fixture`, cycling through the
 * fixture's recorded scoring batches (their first `batchSize` rows: fewer rows for a quicker run on a software
 * adapter), sampling after step 1 and every `every` steps (and after the last).
 */
export async function longLoraRun(gpu: Gpu, opts: { fixture?: string; steps: number; every: number; batchSize?: number; log?: (line: string) => void }): Promise<LongRunResult> {
  const fixture = opts.fixture ?? 'tiny-llama';
  const dir = fixtureDir(fixture);
  const { config, store } = await loadFixtureModel(dir);
  const recorded = await fixtureRunBatches(await openReference(dir, 'gradprune.safetensors'));
  const { S, T } = recorded;
  const B = Math.min(opts.batchSize ?? recorded.B, recorded.B);
  const batch = (s: number): TokenBatch => {
    const full = recorded.batch(s);
    return { ...full, B, inputIds: full.inputIds.subarray(0, B * T), lossMask: full.lossMask.subarray(0, B * T) };
  };
  const settings = resolveScoringSettings({ ...DEFAULT_SCORING_SETTINGS, steps: opts.steps, batchSize: B, seqLen: T, weights: 'f32' });
  const gc = exposedGc();
  const buffers = countBuffers(gpu.device);
  const samples: LongRunSample[] = [];
  const sample = (step: number) => {
    gc?.();
    samples.push({ step, liveBuffers: buffers.count(), liveBufferBytes: buffers.bytes(), heapBytes: process.memoryUsage().heapUsed });
    opts.log?.(`  step ${step}: ${buffers.count()} buffers, ${buffers.bytes()} bytes, heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(1)} MiB`);
  };
  try {
    const result = await runLoraRun(gpu, { config, store }, { kind: 'batches', batch: (s) => batch(s % S) }, settings, {
      name: { title: 'The long run', subject: 'long run', noun: 'long run' },
      kind: 'scoring',
      atLeastOneStep: true,
      start: async () => ({
        beforeStep: async (s) => {
          if (s === 1 || (s > 1 && s % opts.every === 0)) sample(s);
        },
        // The last beforeStep sees steps − 1 finished steps: the sample after the last step is taken here.
        finish: async (steps) => {
          sample(steps.losses.length);
          return {};
        },
      }),
    });
    return { fixture, batch: { B, T, distinct: S, recordedB: recorded.B }, samples, losses: result.losses, gcForced: gc !== null, afterRun: { liveBuffers: buffers.count(), liveBufferBytes: buffers.bytes(), labels: buffers.labels() } };
  } finally {
    buffers.restore();
  }
}
