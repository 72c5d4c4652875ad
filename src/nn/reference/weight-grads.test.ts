// The CPU reference's frozen-weight gradients (dLoss/dW of q, k, v, o, gate, up, down; Qwen2's q/k/v biases) against
// central finite differences of its own loss in Float64 storage, and the loss against the fixtures' Hugging Face value.
import { describe, expect, it } from 'vitest';
import { LINEAR_MODULES, linearWeightName, type LinearModule } from '../../model/config';
import { seededRandom } from '../../random';
import { fixtureDir } from '../../testing/paths';
import { DEFAULT_LORA } from '../lora';
import { relError, relL2 } from './compare';
import { loraGradCase } from './fixture';
import { loraState, ReferenceModel, type FrozenGrads } from './model';

const EPS = 1e-5;

/**
 * d/dε of the loss at W + ε·D, by central differences, against Σ D ⊙ G. W is f32, so the steps taken are what f32
 * stores (fround(w ± ε·d) − w, exact in f64): the comparison uses those steps, not ε·D.
 */
function directional(loss: () => number, W: Float32Array, dirs: Float64Array, G: Float64Array): { numeric: number; analytic: number } {
  const w0 = W.slice();
  const up = new Float64Array(W.length), down = new Float64Array(W.length);
  for (let i = 0; i < W.length; i++) {
    W[i] = w0[i] + EPS * dirs[i];
    up[i] = W[i] - w0[i];
  }
  const lossUp = loss();
  for (let i = 0; i < W.length; i++) {
    W[i] = w0[i] - EPS * dirs[i];
    down[i] = w0[i] - W[i];
  }
  const lossDown = loss();
  W.set(w0);
  // L(w + up) − L(w − down) ≈ Σ G ⊙ (up + down): the first-order term, the steps as taken.
  let analytic = 0;
  for (let i = 0; i < W.length; i++) analytic += G[i] * (up[i] + down[i]);
  return { numeric: lossUp - lossDown, analytic };
}

describe.each(['tiny-llama', 'tiny-qwen2', 'tiny-qwen3'])('frozen-weight gradients of the CPU reference on %s', (name) => {
  it('keeps the fixture loss and LoRA gradients while the frozen weights get theirs', async () => {
    const { fm, ref, B, T, adapters, batch } = await loraGradCase(fixtureDir(name));
    const model = new ReferenceModel(fm.weights, loraState(adapters, DEFAULT_LORA.rank, DEFAULT_LORA.alpha));
    const frozen: FrozenGrads = { layers: new Set([0, fm.config.numLayers - 1]), grads: new Map() };
    const { loss, grads } = model.lossAndGrads(batch.inputIds, batch.lossMask, B, T, frozen);
    expect(relError(loss, (await ref.readF32('loss'))[0])).toBeLessThanOrEqual(1e-5);
    const a = adapters[3];
    expect(relL2(grads.get(a.name)!.dB, await ref.readF32(`grad.${a.name}.lora_B.weight`))).toBeLessThanOrEqual(1e-4);
    expect([...frozen.grads.keys()].sort()).toEqual([0, fm.config.numLayers - 1].flatMap((l) => LINEAR_MODULES.map((m) => linearWeightName(l, m))).sort());
    for (const [key, g] of frozen.grads) {
      expect(g.db !== null, key).toBe(fm.config.bias[key.split('.').at(-2) as LinearModule]); // Qwen2: q, k, v
      expect(g.dW.some((v) => v !== 0), key).toBe(true);
    }
  });

  it('equal central finite differences of the loss (f64 storage), per module, bias and element', async () => {
    const { fm, B, T, adapters, batch } = await loraGradCase(fixtureDir(name));
    const model = new ReferenceModel(fm.weights, loraState(adapters, DEFAULT_LORA.rank, DEFAULT_LORA.alpha), 512, 'f64');
    const layers = [0, fm.config.numLayers - 1];
    const frozen: FrozenGrads = { layers: new Set(layers), grads: new Map() };
    model.lossAndGrads(batch.inputIds, batch.lossMask, B, T, frozen);
    const loss = () => model.loss(batch.inputIds, batch.lossMask, B, T);
    const random = seededRandom(7);
    for (const l of layers) {
      for (const m of LINEAR_MODULES) {
        const { W, b } = fm.weights.layers[l].linear[m];
        const g = frozen.grads.get(linearWeightName(l, m))!;
        // A random ±1 direction over the whole matrix.
        const dirs = Float64Array.from(W, () => (random() < 0.5 ? -1 : 1));
        const d = directional(loss, W, dirs, g.dW);
        expect(Math.abs(d.numeric - d.analytic) / Math.abs(d.analytic), `layer ${l} ${m}: ${d.numeric} vs ${d.analytic}`).toBeLessThanOrEqual(1e-5);
        // The element of largest |G| on its own.
        let top = 0;
        for (let i = 0; i < g.dW.length; i++) if (Math.abs(g.dW[i]) > Math.abs(g.dW[top])) top = i;
        const one = new Float64Array(W.length);
        one[top] = 1;
        const e = directional(loss, W, one, g.dW);
        expect(Math.abs(e.numeric - e.analytic) / Math.abs(e.analytic), `layer ${l} ${m}[${top}]`).toBeLessThanOrEqual(1e-4);
        if (b) {
          const bd = directional(loss, b, Float64Array.from(b, () => (random() < 0.5 ? -1 : 1)), g.db!);
          expect(Math.abs(bd.numeric - bd.analytic) / Math.abs(bd.analytic), `layer ${l} ${m} bias`).toBeLessThanOrEqual(1e-5);
        }
      }
    }
  });
});
