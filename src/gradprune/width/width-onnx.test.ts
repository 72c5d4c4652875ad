// A width-pruned folder through the ONNX export, run by onnxruntime-node: its logits equal the CPU reference's on
// the fixture's weights sliced by hand (src/testing/width-reference.ts). tiny-qwen2 with a key/value head removed is
// the case where head_dim (16) is no longer hidden / heads (96 / 3).
import path from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../model/checkpoint';
import { openFolder } from '../../model/node-files';
import { maxScaledAbsError } from '../../nn/reference/compare';
import { loadFixtureModel, openReference } from '../../nn/reference/fixture';
import { ReferenceModel } from '../../nn/reference/model';
import { FolderSink } from '../../export/node-sink';
import { decoderFeeds, exportOnnxToTemp, tempDir } from '../../testing/onnx';
import { fixtureDir } from '../../testing/paths';
import { slicedReferenceWeights } from '../../testing/width-reference';
import { exportWidthPrunedTo, planWidthPrune, type WidthTarget } from '.';

describe('width-pruned ONNX in onnxruntime-node', () => {
  it.each([
    ['tiny-qwen2', { heads: 1, channels: 56 }],
    ['tiny-llama', { heads: 1, channels: 40 }],
  ] as [string, WidthTarget][])('%s: fp32 logits equal the CPU reference of the sliced weights', async (name, target) => {
    const dir = fixtureDir(name);
    const ckpt = await openCheckpoint(await openFolder(dir), name);
    const { plan } = await planWidthPrune(ckpt, target, { importance: 'l1' });
    const pruned = path.join(await tempDir('width-onnx'), 'pruned');
    await exportWidthPrunedTo(new FolderSink(pruned), ckpt, plan, { baseModel: name, importance: 'l1', reduction: 'sum', seed: null });
    const onnxDir = await exportOnnxToTemp(pruned);
    const session = await ort.InferenceSession.create(path.join(onnxDir, 'onnx/model.onnx'));

    const ref = await openReference(dir, 'forward.safetensors');
    const [B, T] = ref.info('input_ids').shape;
    const ids = await ref.readI32('input_ids');
    const rows = Array.from({ length: B }, (_, b) => Array.from(ids.subarray(b * T, (b + 1) * T)));
    const positions = Array.from({ length: T }, (_, i) => i);
    const config = (await openCheckpoint(await openFolder(pruned))).config;
    const out = (await session.run(decoderFeeds(ort, config, rows.map((r) => ({ ids: r, mask: positions.map(() => 1), positions })), null) as Record<string, ort.Tensor>)) as Record<string, ort.Tensor>;
    await session.release();

    const { weights } = await loadFixtureModel(dir);
    const want = new ReferenceModel(slicedReferenceWeights(weights, plan.layers)).forward(ids, B, T).logits;
    expect(maxScaledAbsError(out.logits.data as Float32Array, want)).toBeLessThanOrEqual(1e-4);
  }, 120_000);
});
