// The GPU engine's frozen-weight gradients, summed over batches (and their squares), and LLM-Pruner's saliences
// reduced from them, against the CPU reference's weight gradients (themselves checked against finite differences in
// reference/weight-grads.test.ts) on tiny-llama (no LoRA, resident and streamed) and tiny-qwen2 (LoRA, biases).
import { describe, expect, it } from 'vitest';
import type { TokenBatch } from '../data/types';
import { readback } from '../gpu/tensor';
import { linearWeightName } from '../model/config';
import { fixtureDir } from '../testing/paths';
import { testGpu } from '../testing/gpu';
import { DEFAULT_LORA } from './lora';
import { GpuModel } from './model';
import { relL2 } from './reference/compare';
import { loraGradCase } from './reference/fixture';
import { loraState, ReferenceModel, type LinearGrad } from './reference/model';
import { weightGradBytes } from './weight-grads';
import { readSaliences } from './weight-saliences';

const gpu = await testGpu();

/** A second batch: the fixture's rows reversed, every position after the first a target. */
function secondBatch(b: TokenBatch): TokenBatch {
  const inputIds = b.inputIds.slice().reverse();
  const lossMask = Int32Array.from(inputIds, (_, i) => (i % b.T === 0 ? 0 : 1));
  return { ...b, inputIds, lossMask };
}

/** Σ_b g_b and Σ_b g_b² of every asked-for module on the CPU reference, per batch as the engine accumulates them. */
function referenceSums(model: ReferenceModel, batches: TokenBatch[], layers: number[]) {
  const sums = new Map<string, { first: LinearGrad; second: LinearGrad }>();
  for (const b of batches) {
    const frozen = { layers: new Set(layers), grads: new Map<string, LinearGrad>() };
    model.lossAndGrads(b.inputIds, b.lossMask, b.B, b.T, frozen);
    for (const [name, g] of frozen.grads) {
      let s = sums.get(name);
      const zero = () => ({ dW: new Float64Array(g.dW.length), db: g.db ? new Float64Array(g.db.length) : null });
      if (!s) sums.set(name, (s = { first: zero(), second: zero() }));
      g.dW.forEach((v, i) => ((s.first.dW[i] += v), (s.second.dW[i] += v * v)));
      g.db?.forEach((v, i) => ((s.first.db![i] += v), (s.second.db![i] += v * v)));
    }
  }
  return sums;
}

/** LLM-Pruner's saliences of W [OC, IC] from G = first / n and Fisher = second / n, summed by rows and columns, in f64. */
function referenceSaliences(W: Float32Array, first: Float64Array, second: Float64Array, OC: number, IC: number, n: number) {
  const sal = { first: [new Float64Array(OC), new Float64Array(IC)], second: [new Float64Array(OC), new Float64Array(IC)], mix: [new Float64Array(OC), new Float64Array(IC)] };
  for (let o = 0; o < OC; o++) {
    for (let i = 0; i < IC; i++) {
      const e = o * IC + i;
      const wg = (W[e] * first[e]) / n, wfw = (W[e] * W[e] * second[e]) / n;
      for (const [k, v] of [['first', Math.abs(wg)], ['second', Math.abs(wfw)], ['mix', Math.abs(wg - 0.5 * wfw)]] as const) {
        sal[k][0][o] += v;
        sal[k][1][i] += v;
      }
    }
  }
  return sal;
}

describe.each([
  { name: 'tiny-llama', lora: false, residency: 'resident' as const },
  { name: 'tiny-llama', lora: false, residency: 'streamed' as const },
  { name: 'tiny-qwen2', lora: true, residency: 'resident' as const },
])('frozen-weight gradients on the GPU: $name ($residency, LoRA $lora)', ({ name, lora, residency }) => {
  it('sum g and g² over batches and reduce to the saliences the CPU reference gives', async () => {
    const { fm, B, T, adapters, batch } = await loraGradCase(fixtureDir(name));
    const L = fm.config.numLayers;
    const layers = [0, L - 1];
    const batches = [batch, secondBatch(batch)];
    const model = await GpuModel.load(gpu, fm.config, fm.store, {
      batchSize: B, seqLen: T, training: true, residency,
      lora: lora ? DEFAULT_LORA : null, adapters: lora ? adapters : undefined,
      weightGrads: { layers, second: true },
    });
    for (const b of batches) await model.run(b, true);
    const cpu = new ReferenceModel(fm.weights, lora ? loraState(adapters, DEFAULT_LORA.rank, DEFAULT_LORA.alpha) : null);
    const want = referenceSums(cpu, batches, layers);
    expect(model.frozenGrads.size).toBe(layers.length * 7);
    for (const [key, g] of model.frozenGrads) {
      const w = want.get(key)!;
      expect(relL2(await readback(gpu.device, g.first), w.first.dW), `${key} Σg`).toBeLessThanOrEqual(1e-4);
      expect(relL2(await readback(gpu.device, g.second!), w.second.dW), `${key} Σg²`).toBeLessThanOrEqual(2e-4);
      expect(g.firstBias !== null).toBe(w.first.db !== null);
      if (g.firstBias) {
        expect(relL2(await readback(gpu.device, g.firstBias), w.first.db!), `${key} Σdb`).toBeLessThanOrEqual(1e-4);
        expect(relL2(await readback(gpu.device, g.secondBias!), w.second.db!), `${key} Σdb²`).toBeLessThanOrEqual(2e-4);
      }
    }
    const saliences = await readSaliences(model, batches.length);
    model.destroy();
    expect(saliences).toHaveLength(layers.length * 7);
    for (const s of saliences) {
      const key = linearWeightName(s.layer, s.module);
      const { W } = fm.weights.layers[s.layer].linear[s.module];
      const [OC, IC] = [s.rows.first.length, s.columns.first.length];
      const ref = referenceSaliences(W, want.get(key)!.first.dW, want.get(key)!.second.dW, OC, IC, batches.length);
      for (const k of ['first', 'second', 'mix'] as const) {
        expect(relL2(s.rows[k], ref[k][0]), `${key} rows ${k}`).toBeLessThanOrEqual(2e-4);
        expect(relL2(s.columns[k], ref[k][1]), `${key} columns ${k}`).toBeLessThanOrEqual(2e-4);
      }
    }
  });
});

describe('frozen-weight gradients, first order only', () => {
  it('accumulate straight into the sums (no per-batch buffer) and equal the CPU reference', async () => {
    const { fm, B, T, batch } = await loraGradCase(fixtureDir('tiny-qwen2'));
    const batches = [batch, secondBatch(batch)];
    const model = await GpuModel.load(gpu, fm.config, fm.store, { batchSize: B, seqLen: T, training: true, lora: null, weightGrads: { layers: [2], second: false } });
    // What the gradient sums cost is what weightGradBytes says: one layer's linear weights and biases in f32.
    const plain = GpuModel.create(model.weights, { batchSize: B, seqLen: T, training: true, lora: null });
    const c = fm.config;
    const layerWeights = c.hiddenSize * (c.numHeads + 2 * c.numKvHeads) * c.headDim + c.numHeads * c.headDim * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize;
    const biases = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
    expect(weightGradBytes(c, { layers: [2], second: false })).toBe(4 * (layerWeights + biases));
    expect(model.jobBytes - plain.jobBytes).toBe(4 * (layerWeights + biases));
    plain.destroy();
    for (const b of batches) await model.run(b, true);
    const want = referenceSums(new ReferenceModel(fm.weights), batches, [2]);
    for (const [key, g] of model.frozenGrads) {
      expect(g.second).toBeNull();
      expect(g.grad).toBeNull();
      expect(relL2(await readback(gpu.device, g.first), want.get(key)!.first.dW), key).toBeLessThanOrEqual(1e-4);
    }
    const saliences = await readSaliences(model, 2);
    model.destroy();
    const q = saliences.find((s) => s.module === 'q_proj')!;
    const ref = referenceSaliences(fm.weights.layers[2].linear.q_proj.W, want.get(linearWeightName(2, 'q_proj'))!.first.dW, new Float64Array(q.rows.first.length * q.columns.first.length), q.rows.first.length, q.columns.first.length, 2);
    expect(relL2(q.rows.first, ref.first[0])).toBeLessThanOrEqual(2e-4);
    expect(q.rows.second.every((v) => v === 0)).toBe(true);
    expect(relL2(q.rows.mix, ref.first[0])).toBeLessThanOrEqual(2e-4);
  });
});
