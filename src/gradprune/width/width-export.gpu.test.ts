// The width-pruned export through the GPU engine: the exported folder, opened by our loader with its new widths,
// gives the logits of the CPU reference run on the fixture's f32 weights sliced by hand (src/testing/width-reference.ts)
// — and they differ from the dense model's, so the check has something to see.
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../model/checkpoint';
import { openFolder } from '../../model/node-files';
import { GpuModel } from '../../nn/model';
import { maxScaledAbsError } from '../../nn/reference/compare';
import { loadFixtureModel, openReference } from '../../nn/reference/fixture';
import { ReferenceModel } from '../../nn/reference/model';
import { testGpu } from '../../testing/gpu';
import { fixtureDir } from '../../testing/paths';
import { slicedReferenceWeights } from '../../testing/width-reference';
import { exportWidthPruned, planWidthPrune, type WidthTarget } from '.';

const gpu = await testGpu();

describe('width-pruned export on the GPU engine', () => {
  it.each([
    ['tiny-llama', { heads: 1, channels: 40 }],
    ['tiny-qwen2', { heads: 1, channels: 56 }],
    ['tiny-qwen3', { heads: 1, channels: 33 }],
    ['tiny-mistral', { ratio: 0.2 }],
  ] as [string, WidthTarget][])('%s: logits equal the CPU reference of the sliced weights', async (name, target) => {
    const dir = fixtureDir(name);
    const ckpt = await openCheckpoint(await openFolder(dir), name);
    const { plan } = await planWidthPrune(ckpt, target, { importance: 'l2' });
    const pruned = await openCheckpoint(await exportWidthPruned(ckpt, plan, { baseModel: name, importance: 'l2', reduction: 'sum', seed: null }), 'pruned');

    const ref = await openReference(dir, 'forward.safetensors');
    const [B, T] = ref.info('input_ids').shape;
    const ids = await ref.readI32('input_ids');
    const model = await GpuModel.load(gpu, pruned.config, pruned.store, { batchSize: B, seqLen: T, lora: null });
    await model.run({ B, T, inputIds: ids, lossMask: new Int32Array(B * T), padTokenId: 0 });
    const got = await model.readLogits();
    model.destroy();

    const { weights } = await loadFixtureModel(dir);
    const want = new ReferenceModel(slicedReferenceWeights(weights, plan.layers)).forward(ids, B, T).logits;
    expect(maxScaledAbsError(got, want)).toBeLessThanOrEqual(1e-4);
    expect(maxScaledAbsError(got, await ref.readF32('logits'))).toBeGreaterThan(1e-2);
  });
});
