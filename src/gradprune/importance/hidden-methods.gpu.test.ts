// Block Influence and angular distance gathered by runScoring in its own steps, against the CPU reference's hidden
// states (nn/reference, checked against Hugging Face). The fixture run's first two steps train with lr 0 (warmup
// from 0) on B = 0 adapters, so both steps' forward passes are the base model's: the reference is a plain forward
// of each step's batch. The igia methods give the run's own scores.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestGpu, type Gpu } from '../../gpu/device';
import { openCheckpoint } from '../../model/checkpoint';
import { openFolder } from '../../model/node-files';
import { hiddenDistanceSum } from '../../nn/kernels/hidden-distance.cpu';
import { DEFAULT_LORA, loadLoraAdapters } from '../../nn/lora';
import { fixtureRunBatches, loadFixtureModel, openReference } from '../../nn/reference/fixture';
import { hiddenStates } from '../../nn/reference/hidden-states';
import { ReferenceModel } from '../../nn/reference/model';
import { fixtureDir } from '../../testing/paths';
import { runScoring } from '../pipeline';
import { makePlan } from '../plan';
import { angularScores, hiddenStatePairsFor, importanceMethod } from './index';
import type { HiddenStatePair } from './method';

const STEPS = 2;
// Relative tolerances: 1 − cos is f32 dot products over C (seen ≤ 1.3e-7 here); arccos on the GPU is allowed WGSL's
// loose acos accuracy (inherited from atan2: 4096 ULP ≈ 2.4e-4 relative; seen ≤ 3e-5 on SwiftShader).
const BI_TOLERANCE = 1e-6;
const ANGULAR_TOLERANCE = 5e-4;
const N = 2; // layers to remove

describe.each(['tiny-llama', 'tiny-qwen3'])('hidden-state methods from the scoring run on %s', (name) => {
  let gpu: Gpu;
  beforeAll(async () => {
    gpu = await requestGpu();
  });
  afterAll(() => gpu?.device.destroy());

  it('BI and angular distance equal the CPU reference (relative 1e-6 and 5e-4); angular removes its block', async () => {
    const dir = fixtureDir(name);
    const ckpt = await openCheckpoint(await openFolder(dir), name);
    const { config } = ckpt;
    const L = config.numLayers;
    const C = config.hiddenSize;
    const ref = await openReference(dir, 'gradprune.safetensors');
    const { B, T, batch } = await fixtureRunBatches(ref);
    const methods = ['bi', 'angular', 'igia', 'igia-code'].map(importanceMethod);
    const pairs = hiddenStatePairsFor(methods, L, N);
    const run = await runScoring(
      gpu,
      ckpt,
      { kind: 'batches', batch },
      { steps: STEPS, batchSize: B, seqLen: T, lr: 1e-3, warmupSteps: 2, schedule: 'constant', weightDecay: 0.1, maxGradNorm: 1, weights: 'f32' },
      { initialAdapters: await loadLoraAdapters(config, DEFAULT_LORA, (n) => ref.readF32(n), 'init.'), hiddenStates: pairs },
    );
    expect(run.hiddenStates?.passes).toBe(STEPS);

    // The reference: mean over both steps' counted positions of the base model's distances.
    const fm = await loadFixtureModel(dir);
    const model = new ReferenceModel(fm.weights);
    const sums = new Map<string, { sum: number; count: number }>();
    const key = (p: HiddenStatePair) => `${p.from}:${p.to}:${p.measure}`;
    for (let s = 0; s < STEPS; s++) {
      const b = batch(s);
      const h = hiddenStates(model.forward(b.inputIds, B, T).tape);
      for (const p of pairs) {
        const d = hiddenDistanceSum(h[p.from], h[p.to], b.lossMask, T, C, p.measure);
        const acc = sums.get(key(p)) ?? { sum: 0, count: 0 };
        sums.set(key(p), { sum: acc.sum + d.sum, count: acc.count + d.count });
      }
    }
    const want = (p: HiddenStatePair) => sums.get(key(p))!.sum / sums.get(key(p))!.count;
    expect(run.hiddenStates?.tokens).toBe(sums.get(key(pairs[0]))!.count);

    const ctx = { model: ckpt, prune: N, scoring: run };
    const bi = await importanceMethod('bi').compute(ctx);
    bi.layerScores.forEach((s, l) => {
      const w = want({ from: l, to: l + 1, measure: 'cosine' });
      expect(Math.abs(s - w), `BI of layer ${l}: ${s} vs ${w}`).toBeLessThanOrEqual(BI_TOLERANCE * w);
    });

    const angular = await importanceMethod('angular').compute(ctx);
    const distances = Array.from({ length: L - N }, (_, i) => want({ from: i + 1, to: i + 1 + N, measure: 'angular' }));
    const best = distances.indexOf(Math.min(...distances));
    expect(angular.block?.start).toBe(best + 1);
    // Every layer's score from the reference's block distances (angularScores' mapping is checked in importance.test.ts).
    angularScores(L, N, distances).layerScores.forEach((w, l) => expect(Math.abs(angular.layerScores[l] - w), `layer ${l}`).toBeLessThanOrEqual(ANGULAR_TOLERANCE * w));
    expect(Math.abs(angular.block!.distance - distances[best])).toBeLessThanOrEqual(ANGULAR_TOLERANCE * distances[best]);
    expect(makePlan(angular.layerScores, config, { prune: N, merge: 0 }).pruned).toEqual([best + 1, best + 2]);

    // The IGIA methods are the run's scores, with the run's cost.
    expect((await importanceMethod('igia').compute(ctx)).layerScores).toEqual(run.layerScores);
    expect((await importanceMethod('igia-code').compute(ctx)).layerScores).toEqual(run.layerScoresCode);
    for (const r of [bi, angular]) {
      expect(r.cost.gpuBytes).toBeGreaterThan(0);
      expect(r.cost.seconds).toBeGreaterThanOrEqual(0);
    }
  });
});
