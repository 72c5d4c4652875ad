// The CPU reference's lm_head gradient (dW = dlogitsᵀ·h, FrozenGrads.lmHead) against central finite differences of
// its own loss in Float64 storage — what partial-layer fine-tuning's GPU check (nn/partial-finetune.gpu.test.ts) trusts.
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../random';
import { fixtureDir } from '../../testing/paths';
import { loraGradCase } from './fixture';
import { ReferenceModel, type LinearGrad } from './model';

const EPS = 1e-5;

describe.each(['tiny-llama', 'tiny-mistral'])('lm_head gradient of the CPU reference on %s', (name) => {
  it('equals central finite differences of the loss (f64 storage), along a random direction and at its largest element', async () => {
    const { fm, B, T, batch } = await loraGradCase(fixtureDir(name));
    const model = new ReferenceModel(fm.weights, null, 512, 'f64');
    const W = fm.weights.lmHead;
    const frozen = { layers: new Set<number>(), grads: new Map<string, LinearGrad>(), lmHead: new Float64Array(W.length) };
    model.lossAndGrads(batch.inputIds, batch.lossMask, B, T, frozen);
    const G = frozen.lmHead;
    expect(G.some((v) => v !== 0)).toBe(true);
    const loss = () => model.loss(batch.inputIds, batch.lossMask, B, T);
    /** L(W + step) − L(W − step) against Σ G ⊙ (the steps as f32 stores them). */
    const check = (dirs: Float64Array) => {
      const w0 = W.slice();
      const up = new Float64Array(W.length), down = new Float64Array(W.length);
      for (let i = 0; i < W.length; i++) (W[i] = w0[i] + EPS * dirs[i]), (up[i] = W[i] - w0[i]);
      const lossUp = loss();
      for (let i = 0; i < W.length; i++) (W[i] = w0[i] - EPS * dirs[i]), (down[i] = w0[i] - W[i]);
      const lossDown = loss();
      W.set(w0);
      let analytic = 0;
      for (let i = 0; i < W.length; i++) analytic += G[i] * (up[i] + down[i]);
      return Math.abs(lossUp - lossDown - analytic) / Math.abs(analytic);
    };
    const random = seededRandom(11);
    expect(check(Float64Array.from(W, () => (random() < 0.5 ? -1 : 1)))).toBeLessThanOrEqual(1e-5);
    let top = 0;
    for (let i = 0; i < G.length; i++) if (Math.abs(G[i]) > Math.abs(G[top])) top = i;
    const one = new Float64Array(W.length);
    one[top] = 1;
    expect(check(one)).toBeLessThanOrEqual(1e-4);
  });
});
