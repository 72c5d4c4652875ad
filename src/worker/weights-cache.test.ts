// The weights cache's choices, without a GPU (ModelWeights.load stood in for by the bytes nn/memory.ts counts): a
// Llama-3.1-8B in f16 pruned to 20 layers, checked and recovered on a 24 GB-class desktop GPU (20 GiB budget: dense
// and pruned do not fit together) and on a 48 GB one (they do), and under a 12 GiB limit (the dense layers stream).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AdapterSummary, Gpu } from '../gpu/device';
import { normalizeConfig } from '../model/config';
import type { TensorStore } from '../model/safetensors';
import { DEFAULT_LORA } from '../nn/lora';
import { estimateMemory, type MemoryPlan } from '../nn/memory';
import { ModelWeights } from '../nn/weights';
import { SHARED } from '../testing/paths';
import { WeightsCache, type WeightsCheckpoint } from './weights-cache';

const GiB = 2 ** 30;
const raw = JSON.parse(readFileSync(path.join(SHARED, 'configs', 'llama-3.1-8b.json'), 'utf8'));
const dense: WeightsCheckpoint = { name: 'dense', config: normalizeConfig(raw), store: {} as TensorStore };
const pruned: WeightsCheckpoint = { name: 'pruned', config: normalizeConfig({ ...raw, num_hidden_layers: 20 }), store: {} as TensorStore };
const recovered: WeightsCheckpoint = { ...pruned, name: 'recovered' };
const adapter: AdapterSummary = {
  name: 'desktop', isSoftware: false, shaderF16: true, timestampQuery: true, subgroups: true,
  maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 2 * GiB, maxComputeWorkgroupStorageSize: 32768, maxComputeInvocationsPerWorkgroup: 256, maxStorageBuffersPerShaderStage: 10,
};
const gpu = { adapter } as Gpu;
const evalJob: MemoryPlan = { batchSize: 4, seqLen: 256, lora: null, weights: 'f16', checkpointing: true, training: false }; // as eval/engines.ts plans it
const genJob: MemoryPlan = { ...evalJob, batchSize: 1, seqLen: 1 };
const trainJob: MemoryPlan = { ...evalJob, lora: DEFAULT_LORA, training: true, checkpointing: false };

const loads: string[] = [];
vi.spyOn(ModelWeights, 'load').mockImplementation(async (g, config, _store, opts) => {
  const bindingBytes = Math.min(adapter.maxStorageBufferBindingSize, adapter.maxBufferSize);
  const allocatedBytes = estimateMemory(config, { ...evalJob, weights: opts.storage, residency: opts.residency, bindingBytes }).weights;
  loads.push(`${config.numLayers}L ${opts.residency}`);
  return { gpu: g, config, storage: opts.storage, residency: opts.residency, allocatedBytes, streamed: opts.residency === 'streamed', destroy: vi.fn() } as unknown as ModelWeights;
});
afterEach(() => void (loads.length = 0));

/** The journey's order: Check (dense eval + generation, pruned eval + generation), then Recover (train pruned; measure pruned, dense, recovered). */
async function checkAndRecover(cache: WeightsCache, maxGpuMemory: number | null) {
  const use = async (ckpt: WeightsCheckpoint, job: MemoryPlan) => (await cache.acquire(gpu, ckpt, 'f16', job, { maxGpuMemory })).release();
  for (const c of [dense, pruned]) {
    await use(c, evalJob);
    await use(c, genJob);
  }
  const check = [...loads];
  await use(pruned, trainJob);
  for (const c of [pruned, dense, recovered]) await use(c, evalJob);
  return { check, recover: loads.slice(check.length) };
}

describe('weights cache (Llama-3.1-8B f16, pruned to 20 layers)', () => {
  it('48 GiB: each checkpoint uploaded once, all kept', async () => {
    const cache = new WeightsCache();
    expect(await checkAndRecover(cache, 48 * GiB)).toEqual({ check: ['32L resident', '20L resident'], recover: ['20L resident'] });
    expect(cache.list().map((w) => w.name)).toEqual(['pruned', 'dense', 'recovered']); // least recently used first
    expect(cache.bytes).toBeLessThanOrEqual(48 * GiB);
  });

  it('20 GiB: the Check still uploads each model once (its jobs grouped); the least recently used upload makes room', async () => {
    const cache = new WeightsCache();
    expect(await checkAndRecover(cache, 20 * GiB)).toEqual({ check: ['32L resident', '20L resident'], recover: ['32L resident', '20L resident'] });
    expect(cache.list().map((w) => w.name)).toEqual(['recovered']);
  });

  it('12 GiB: the dense layers stream (16 GB of weights do not fit), the pruned ones only for training', async () => {
    const cache = new WeightsCache();
    expect(await checkAndRecover(cache, 12 * GiB)).toEqual({
      check: ['32L streamed', '20L resident'],
      // Training (no checkpointing asked for) does not fit beside resident pruned weights: they are uploaded again,
      // streamed (checkpointing forced), and the measurements after reuse that upload.
      recover: ['20L streamed', '32L streamed', '20L resident'],
    });
  });

  it('a new device drops every upload; evict drops the stale ones', async () => {
    const cache = new WeightsCache();
    await (await cache.acquire(gpu, dense, 'f16', genJob, { maxGpuMemory: 48 * GiB })).release();
    await (await cache.acquire(gpu, pruned, 'f16', genJob, { maxGpuMemory: 48 * GiB })).release();
    cache.evict((c) => c !== dense);
    expect(cache.list().map((w) => w.name)).toEqual(['dense']);
    const other = { adapter } as Gpu;
    await (await cache.acquire(other, pruned, 'f16', genJob, { maxGpuMemory: 48 * GiB })).release();
    expect(cache.list().map((w) => w.name)).toEqual(['pruned']);
    expect(cache.uploads).toBe(3);
  });

  it('never evicts weights a job is running on', async () => {
    const cache = new WeightsCache();
    const held = await cache.acquire(gpu, dense, 'f16', evalJob, { maxGpuMemory: 20 * GiB });
    // The pruned model does not fit resident beside the pinned dense one, which cannot go: it streams beside it.
    const pinnedBeside = await cache.acquire(gpu, pruned, 'f16', evalJob, { maxGpuMemory: 20 * GiB });
    expect(pinnedBeside.weights.residency).toBe('streamed');
    expect(cache.list().map((w) => [w.name, w.residency])).toEqual([['dense', 'resident'], ['pruned', 'streamed']]);
    pinnedBeside.release();
    held.release();
    // Nothing fits beside a pinned upload that fills the budget: the job is refused, the pinned upload stays.
    const big = await cache.acquire(gpu, dense, 'f16', evalJob, { maxGpuMemory: 17 * GiB });
    await expect(cache.acquire(gpu, recovered, 'f16', evalJob, { maxGpuMemory: 17 * GiB })).rejects.toMatchObject({ code: 'memory' });
    expect(cache.list().map((w) => w.name)).toEqual(['dense']);
    big.release();
  });
});
