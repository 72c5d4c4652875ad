// Taylor importance from the GPU's frozen-weight gradients against the CPU reference's (reference/model.ts, checked
// against finite differences in reference/weight-grads.test.ts): the layer-level method (Σ|W ⊙ G| per layer, G the
// mean gradient over the scoring batches) on tiny-llama, and LLM-Pruner's row / column saliences with the Fisher
// term computed a group of layers per pass on tiny-qwen3; the memory plan's refusals.
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../../errors';
import { LINEAR_MODULES, linearShape, linearWeightName } from '../../model/config';
import { fixtureRunBatches, loadFixtureModel, openReference } from '../../nn/reference/fixture';
import { ranking, relL2 } from '../../nn/reference/compare';
import { ReferenceModel, type LinearGrad } from '../../nn/reference/model';
import type { TokenBatch } from '../../data/types';
import { fixtureDir } from '../../testing/paths';
import { testGpu } from '../../testing/gpu';
import { importanceMethod } from './index';
import { frozenWeightSaliences, layerTaylorScores, planSaliencePasses, salienceMemoryLine, salienceScorer, taylor } from './taylor';

const gpu = await testGpu();

/** The CPU reference's Σ_b g_b and Σ_b g_b² of every linear weight, over these batches (no LoRA). */
function referenceSums(model: ReferenceModel, batches: TokenBatch[]) {
  const L = model.w.config.numLayers;
  const sums = new Map<string, { first: Float64Array; second: Float64Array }>();
  for (const b of batches) {
    const frozen = { layers: new Set(Array.from({ length: L }, (_, l) => l)), grads: new Map<string, LinearGrad>() };
    model.lossAndGrads(b.inputIds, b.lossMask, b.B, b.T, frozen);
    for (const [name, g] of frozen.grads) {
      let s = sums.get(name);
      if (!s) sums.set(name, (s = { first: new Float64Array(g.dW.length), second: new Float64Array(g.dW.length) }));
      g.dW.forEach((v, i) => ((s.first[i] += v), (s.second[i] += v * v)));
    }
  }
  return sums;
}

async function fixtureCase(name: string, steps: number) {
  const dir = fixtureDir(name);
  const fm = await loadFixtureModel(dir);
  const { B, T, batch } = await fixtureRunBatches(await openReference(dir, 'gradprune.safetensors'));
  const batches = Array.from({ length: steps }, (_, s) => batch(s));
  return { fm, B, T, batch, batches, sums: referenceSums(new ReferenceModel(fm.weights), batches) };
}

describe('Taylor importance on the GPU', () => {
  it("the layer-level method: Σ|W ⊙ G| per layer equals the CPU reference's, same ranking (tiny-llama)", async () => {
    const steps = 3;
    const { fm, B, T, batch, sums } = await fixtureCase('tiny-llama', steps);
    const L = fm.config.numLayers;
    const want = Array.from({ length: L }, (_, l) => {
      let s = 0;
      for (const m of LINEAR_MODULES) {
        const { W } = fm.weights.layers[l].linear[m];
        const G = sums.get(linearWeightName(l, m))!.first;
        for (let i = 0; i < W.length; i++) s += Math.abs((W[i] * G[i]) / steps);
      }
      return s;
    });
    expect(importanceMethod('taylor')).toBe(taylor);
    const got = await taylor.compute({
      model: fm, prune: 2, gpu, data: { kind: 'batches', batch },
      settings: { steps, batchSize: B, seqLen: T, weights: 'f32' },
    });
    expect(got.method).toBe('taylor');
    expect(relL2(got.layerScores, want)).toBeLessThanOrEqual(1e-4);
    got.layerScores.forEach((v, l) => expect(Math.abs(v - want[l]) / want[l], `layer ${l}`).toBeLessThanOrEqual(2e-4));
    expect(ranking(got.layerScores)).toEqual(ranking(want));
    expect(got.cost.gpuBytes).toBeGreaterThan(0);
    expect(got.cost.note).toMatch(/1 pass over 3 batches/);
  });

  it('row and column saliences (first, Fisher, mix) two layers per pass equal the CPU reference (tiny-qwen3)', async () => {
    const steps = 2;
    const { fm, B, T, batches, sums } = await fixtureCase('tiny-qwen3', steps);
    const L = fm.config.numLayers;
    const r = await frozenWeightSaliences(gpu, fm, { batches, batchSize: B, seqLen: T, weights: 'f32', second: true, layersPerPass: 2 });
    expect(r.passes).toEqual([[0, 1], [2, 3], [4]]);
    expect(r.saliences).toHaveLength(L * 7);
    const scorers = { first: salienceScorer(r, 'param_first'), second: salienceScorer(r, 'param_second'), mix: salienceScorer(r, 'param_mix') };
    for (const l of [0, 3, 4]) {
      for (const m of ['k_proj', 'o_proj', 'down_proj'] as const) {
        const { W } = fm.weights.layers[l].linear[m];
        const { first, second } = sums.get(linearWeightName(l, m))!;
        const [OC, cols] = linearShape(fm.config, m);
        for (const k of ['first', 'second', 'mix'] as const) {
          const rows = new Float64Array(OC), columns = new Float64Array(cols);
          for (let o = 0; o < OC; o++) {
            for (let i = 0; i < cols; i++) {
              const e = o * cols + i;
              const wg = (W[e] * first[e]) / steps, wfw = (W[e] * W[e] * second[e]) / steps;
              const v = k === 'first' ? Math.abs(wg) : k === 'second' ? Math.abs(wfw) : Math.abs(wg - 0.5 * wfw);
              rows[o] += v;
              columns[i] += v;
            }
          }
          const got = await scorers[k](l, m);
          expect(relL2(got.rows, rows), `layer ${l} ${m} rows ${k}`).toBeLessThanOrEqual(2e-4);
          expect(relL2(got.cols, columns), `layer ${l} ${m} columns ${k}`).toBeLessThanOrEqual(2e-4);
        }
      }
    }
    // The layer scores are the rows' first-order sums, whatever the grouping.
    const want = Array.from({ length: L }, (_, l) => LINEAR_MODULES.reduce((s, m) => {
      const { W } = fm.weights.layers[l].linear[m];
      const G = sums.get(linearWeightName(l, m))!.first;
      let t = 0;
      for (let i = 0; i < W.length; i++) t += Math.abs((W[i] * G[i]) / steps);
      return s + t;
    }, 0));
    expect(relL2(layerTaylorScores(fm.config, r.saliences), want)).toBeLessThanOrEqual(1e-4);
  });

  it('plans passes within the memory budget and refuses what does not fit, saying how much', async () => {
    const fm = await loadFixtureModel(fixtureDir('tiny-llama'));
    const base = { batchSize: 4, seqLen: 32, weights: 'f32' as const, second: true };
    const roomy = planSaliencePasses(fm.config, base, gpu.adapter);
    expect(roomy.passes).toEqual([[0, 1, 2, 3, 4, 5]]);
    const two = planSaliencePasses(fm.config, { ...base, memoryBudget: roomy.jobAndWeights + 2.5 * roomy.perLayer }, gpu.adapter);
    expect(two.passes).toEqual([[0, 1], [2, 3], [4, 5]]);
    // 6 layers of (64·(64 + 32 + 32 + 64) + 3·64·176) f32 weights, three buffers each: 540 KiB a layer.
    expect(two.perLayer).toBe(3 * 4 * (64 * (64 + 32 + 32 + 64) + 3 * 64 * 176));
    expect(salienceMemoryLine(two)).toMatch(/^Taylor gradients: 2 layers per pass, 3 passes over the batches; 1\.05 MiB of f32 gradient sums \(540 KiB a layer\) beside .* \(resident\) and job: .* in all\.$/);
    expect(() => planSaliencePasses(fm.config, { ...base, memoryBudget: roomy.jobAndWeights + 2.5 * roomy.perLayer, layersPerPass: 3 }, gpu.adapter)).toThrow(/Use at most 2 layers per pass/);
    // Resident weights leave no room for one layer's sums: streamed weights do.
    const tight = planSaliencePasses(fm.config, { ...base, memoryBudget: roomy.jobAndWeights }, gpu.adapter);
    expect(tight.residency).toBe('streamed');
    expect(tight.peak).toBeLessThanOrEqual(roomy.jobAndWeights);
    const tooSmall = () => planSaliencePasses(fm.config, { ...base, memoryBudget: roomy.perLayer * 1.5 }, gpu.adapter);
    expect(tooSmall).toThrow(GradPruneError);
    expect(tooSmall).toThrow(/needs .* for one layer's gradient sums \(f32, with the Fisher term\)/);
    await expect(taylor.compute({ model: fm, prune: 2 })).rejects.toThrow(/needs the GPU and the scoring data/);
  });
});
