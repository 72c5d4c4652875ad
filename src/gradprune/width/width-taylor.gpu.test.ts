// LLM-Pruner's first-order Taylor group importance through width pruning's seam: the GPU's frozen-weight saliences
// (gradprune/importance/taylor.ts, salienceScorer) plugged into unitScores as the LineScorer give each key/value
// head group and MLP channel of tiny-llama the Σ |W ⊙ G| over its lines (G the mean gradient over the fixture's
// scoring batches) that the CPU reference's weight gradients give, summed here by hand.
import { describe, expect, it } from 'vitest';
import { linearWeightName, LINEAR_MODULES } from '../../model/config';
import { relL2 } from '../../nn/reference/compare';
import { fixtureRunBatches, loadFixtureModel, openReference } from '../../nn/reference/fixture';
import { ReferenceModel, type LinearGrad } from '../../nn/reference/model';
import { testGpu } from '../../testing/gpu';
import { fixtureDir } from '../../testing/paths';
import { frozenWeightSaliences, salienceScorer } from '../importance/taylor';
import { unitScores } from './importance';

const gpu = await testGpu();

describe('param_first group importance from the GPU gradients', () => {
  it('equals the CPU reference’s Σ|W ⊙ G| over each group’s lines (tiny-llama, 2 batches)', async () => {
    const dir = fixtureDir('tiny-llama');
    const fm = await loadFixtureModel(dir);
    const c = fm.config;
    const { B, T, batch } = await fixtureRunBatches(await openReference(dir, 'gradprune.safetensors'));
    const batches = [batch(0), batch(1)];

    const r = await frozenWeightSaliences(gpu, fm, { batches, batchSize: B, seqLen: T, weights: 'f32', second: false });
    const got = await unitScores(c, fm.store, { importance: 'param_first', gradientScorer: salienceScorer(r, 'param_first') });

    const reference = new ReferenceModel(fm.weights);
    const G = new Map<string, Float64Array>();
    for (const b of batches) {
      const frozen = { layers: new Set(Array.from({ length: c.numLayers }, (_, l) => l)), grads: new Map<string, LinearGrad>() };
      reference.lossAndGrads(b.inputIds, b.lossMask, b.B, b.T, frozen);
      for (const [name, g] of frozen.grads) {
        const sum = G.get(name) ?? new Float64Array(g.dW.length);
        g.dW.forEach((v, i) => (sum[i] += v / batches.length));
        G.set(name, sum);
      }
    }
    const HD = c.headDim, C = c.hiddenSize, F = c.intermediateSize;
    for (let l = 0; l < c.numLayers; l++) {
      const s = (m: (typeof LINEAR_MODULES)[number], i: number) => Math.abs(fm.weights.layers[l].linear[m].W[i] * G.get(linearWeightName(l, m))![i]);
      const attention = [0, 1].map((kv) => {
        let t = 0;
        for (let d = 0; d < 2 * HD; d++) {
          const q = 2 * kv * HD + d; // query heads 2kv, 2kv+1
          for (let i = 0; i < C; i++) t += s('q_proj', q * C + i) + s('o_proj', i * 4 * HD + q);
        }
        for (let d = 0; d < HD; d++) for (let i = 0; i < C; i++) t += s('k_proj', (kv * HD + d) * C + i) + s('v_proj', (kv * HD + d) * C + i);
        return t;
      });
      const mlp = Array.from({ length: F }, (_, ch) => {
        let t = 0;
        for (let i = 0; i < C; i++) t += s('gate_proj', ch * C + i) + s('up_proj', ch * C + i) + s('down_proj', i * F + ch);
        return t;
      });
      expect(relL2(got[l].attention, attention), `layer ${l} heads`).toBeLessThanOrEqual(1e-3);
      expect(relL2(got[l].mlp, mlp), `layer ${l} channels`).toBeLessThanOrEqual(1e-3);
    }
  }, 300_000);
});
