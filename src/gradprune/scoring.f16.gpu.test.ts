// GradPruner's scoring run end to end with the default precision ('auto') on an adapter with shader-f16 (gpu-f16
// tier: Dawn on lavapipe; skipped, with the reason, without it): it stores the weights as f16, records that in the
// result's settings (what scores.json keeps), and reproduces the Hugging Face + PEFT 12-step run of tiny-mistral,
// whose F16 weights f16 storage holds exactly. Tolerances, looser than the f32 tier's (pipeline.gpu.test.ts):
//   per-step loss: relative 1e-3 (f32 tier: 1e-4); grad norm: relative 1e-2 (1e-3);
//   layer_score and layer_score_code: relative 1e-2 (1e-3); the layer ranking identical (as in f32).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../gpu/device';
import { openCheckpoint } from '../model/checkpoint';
import { openFolder } from '../model/node-files';
import { DEFAULT_LORA, loadLoraAdapters } from '../nn/lora';
import { ranking, relError } from '../nn/reference/compare';
import { fixtureRunBatches, openReference } from '../nn/reference/fixture';
import { f16TestGpu } from '../testing/lavapipe';
import { fixtureDir } from '../testing/paths';
import { runScoring, type ScoringData } from './pipeline';
import { scoresDocument } from './scores-file';

let gpu: Gpu;
let skip: string | null = null;
beforeAll(async () => {
  ({ gpu, skip } = await f16TestGpu());
});
afterAll(() => gpu?.device.destroy());

describe("scoring with precision 'auto' on an adapter with shader-f16", () => {
  it('stores f16 weights, says so in the settings, and reproduces reference/gradprune.safetensors of tiny-mistral', async (ctx) => {
    if (skip) return ctx.skip(skip);
    const dir = fixtureDir('tiny-mistral');
    const ckpt = await openCheckpoint(await openFolder(dir), 'tiny-mistral');
    expect(ckpt.dtype).toBe('F16');
    const ref = await openReference(dir, 'gradprune.safetensors');
    const { S, B, T, batch } = await fixtureRunBatches(ref);
    const data: ScoringData = { kind: 'batches', batch };
    // The fixture's run (lr 1e-3 after 2 warmup steps, wd 0.1, clip 1, its init adapters); weights left at the default.
    const result = await runScoring(gpu, ckpt, data, { steps: S, batchSize: B, seqLen: T, lr: 1e-3, warmupSteps: 2, schedule: 'constant', weightDecay: 0.1, maxGradNorm: 1 }, {
      initialAdapters: await loadLoraAdapters(ckpt.config, DEFAULT_LORA, (n) => ref.readF32(n), 'init.'),
    });
    expect(result.settings.weights).toBe('f16');
    const doc = JSON.parse(JSON.stringify(scoresDocument(result, { name: 'tiny-mistral', architecture: ckpt.config.architecture, numLayers: ckpt.config.numLayers })));
    expect(doc.settings.weights).toBe('f16');

    const loss = await ref.readF32('loss');
    const gradNorm = await ref.readF32('grad_norm');
    const layerScore = await ref.readF32('layer_score');
    const layerScoreCode = await ref.readF32('layer_score_code');
    expect(result.losses).toHaveLength(S);
    result.losses.forEach((v, s) => expect(relError(v, loss[s]), `loss[${s}]`).toBeLessThanOrEqual(1e-3));
    result.gradNorms.forEach((v, s) => expect(relError(v, gradNorm[s]), `grad_norm[${s}]`).toBeLessThanOrEqual(1e-2));
    result.layerScores.forEach((v, l) => expect(relError(v, layerScore[l]), `layer_score[${l}]`).toBeLessThanOrEqual(1e-2));
    result.layerScoresCode.forEach((v, l) => expect(relError(v, layerScoreCode[l]), `layer_score_code[${l}]`).toBeLessThanOrEqual(1e-2));
    expect(ranking(result.layerScores)).toEqual(ranking(layerScore));
  });
});
