// Long runs stay flat (a short version of `npm run bench -- --sections longrun`): 24 LoRA steps on tiny-llama
// (one row of 32 tokens a step, to stay quick on software WebGPU) through the real run loop, sampled after step 1
// and every 8 steps. Every buffer a step needs exists after the
// first step, so the live GPU buffers and their bytes must not change after that; the JS heap may wobble with the
// collector but must not grow with the steps; and the run destroys everything it allocated.
import { describe, expect, it } from 'vitest';
import { testGpu } from '../testing/gpu';
import { longLoraRun } from '../testing/long-run';

const gpu = await testGpu();

/** Heap growth allowed from the second sample to the last (a leak of a few KiB per step over 1000 steps shows in the bench). */
const HEAP_GROWTH_BOUND = 4 * 2 ** 20;

describe('a long LoRA run', () => {
  it('keeps GPU buffers, GPU bytes and the JS heap flat, and frees every buffer at the end', async () => {
    const run = await longLoraRun(gpu, { steps: 24, every: 8, batchSize: 1 });
    expect(run.samples.map((s) => s.step)).toEqual([1, 8, 16, 24]);
    expect(run.losses).toHaveLength(24);
    expect(run.losses.every(Number.isFinite)).toBe(true);
    const [first, second] = run.samples;
    expect(first.liveBuffers).toBeGreaterThan(0);
    for (const s of run.samples) {
      expect(s.liveBuffers, `live buffers after step ${s.step}`).toBe(first.liveBuffers);
      expect(s.liveBufferBytes, `live buffer bytes after step ${s.step}`).toBe(first.liveBufferBytes);
    }
    const last = run.samples.at(-1)!;
    expect(last.heapBytes - second.heapBytes, `JS heap growth from step ${second.step} to ${last.step}`).toBeLessThan(HEAP_GROWTH_BOUND);
    // Only the per-device kernel library's placeholder may outlive the run (made once per device, shared by its jobs).
    expect(run.afterRun.labels.filter((label) => label !== 'unused'), 'buffers left after the run').toEqual([]);
  });
});
