// The memory estimate of partial-layer fine-tuning by hand numbers, and the --last-layers check.
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { loadFixtureModel } from './reference/fixture';
import { fixtureDir } from '../testing/paths';
import { partialFinetuneMemory, partialLayers } from './partial-finetune';

describe('partialFinetuneMemory', () => {
  it('tiny-llama, last layer + lm_head: 16 bytes per trained parameter, no untied copy', async () => {
    const { config } = await loadFixtureModel(fixtureDir('tiny-llama'));
    // C 64, 4 heads / 2 kv of 16, F 176, V 512: q 64·64 + k 32·64 + v 32·64 + o 64·64 + 3 · 176·64 = 46080; lm_head 512·64 = 32768.
    const m = partialFinetuneMemory(config, 1);
    expect(m.params).toBe(46080 + 32768);
    expect(m).toMatchObject({ weightBytes: 315392, gradBytes: 315392, adamBytes: 630784, untiedCopyBytes: 0, totalBytes: 1261568, extraBytes: 946176 });
    expect(partialFinetuneMemory(config, 3).params).toBe(3 * 46080 + 32768);
  });

  it('tiny-qwen2 (tied, q/k/v biases), last 2 layers: the biases count, and the untied lm_head copy', async () => {
    const { config } = await loadFixtureModel(fixtureDir('tiny-qwen2'));
    // C 96, 6 heads / 2 kv of 16, F 256, V 512: q 96·96 + 96, k 32·96 + 32, v 32·96 + 32, o 96·96, 3 · 256·96 = 98464 per layer.
    const m = partialFinetuneMemory(config, 2);
    expect(m.params).toBe(2 * 98464 + 512 * 96);
    expect(m.untiedCopyBytes).toBe(4 * 512 * 96);
    expect(m.totalBytes).toBe(16 * m.params);
    expect(m.extraBytes).toBe(12 * m.params + 4 * 512 * 96);
  });
});

describe('partialLayers', () => {
  it('are the last k, and a k outside 1..layers is refused naming --last-layers', async () => {
    const { config } = await loadFixtureModel(fixtureDir('tiny-llama'));
    expect(partialLayers(config, 2)).toEqual([4, 5]);
    for (const k of [0, 7, 1.5]) {
      expect(() => partialLayers(config, k)).toThrow(GradPruneError);
      expect(() => partialLayers(config, k)).toThrow(/--last-layers must be an integer from 1 to the model's 6 layers/);
    }
  });
});
