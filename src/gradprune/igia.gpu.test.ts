import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { createTensor, readback, upload, type Tensor } from '../gpu/tensor';
import { LINEAR_MODULES, linearShape, linearWeightName, normalizeConfig, type ModelConfig } from '../model/config';
import { IgiaScorer, type IgiaModuleGrads } from './igia';
import { mergeLayers } from './merge';
import { makePlan } from './plan';
import { kendallTau } from './scores';
import { testGpu } from '../testing/gpu';

const gpu = await testGpu();

// Odd sizes everywhere: hidden 30, head_dim 10, kv 10, intermediate 37, rank 5.
const config: ModelConfig = normalizeConfig({
  model_type: 'llama',
  hidden_size: 30,
  num_hidden_layers: 3,
  num_attention_heads: 3,
  num_key_value_heads: 1,
  intermediate_size: 37,
  vocab_size: 50,
});
const RANK = 5;
const linearSize = (name: string) => {
  const m = LINEAR_MODULES.find((x) => name.includes(`.${x}.`))!;
  return linearShape(config, m)[0] * linearShape(config, m)[1];
};
const STEPS = 4;

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

interface Layout {
  grads: IgiaModuleGrads[];
  total: number;
}

/** All grads packed in one buffer at deliberately unaligned offsets (3 floats of padding before each). */
function packedLayout(buffer: Tensor | null): Layout {
  const grads: IgiaModuleGrads[] = [];
  let off = 0;
  for (let layer = 0; layer < config.numLayers; layer++) {
    for (const module of LINEAR_MODULES) {
      const [out, inp] = linearShape(config, module);
      const aOff = off + 3;
      const bOff = aOff + RANK * inp + 3;
      off = bOff + out * RANK;
      grads.push({ layer, module, gA: { buffer: buffer!, offset: aOff }, gB: { buffer: buffer!, offset: bOff } });
    }
  }
  return { grads, total: off };
}

/** S = gB·gA in float64, (out, in). */
function product(gA: Float32Array, gB: Float32Array, out: number, inp: number): Float64Array {
  const s = new Float64Array(out * inp);
  for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) {
    let v = 0;
    for (let k = 0; k < RANK; k++) v += gB[o * RANK + k] * gA[k * inp + i];
    s[o * inp + i] = v;
  }
  return s;
}

const relErr = (got: ArrayLike<number>, want: ArrayLike<number>) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / den);
};

describe('IGIA kernels vs a CPU computation on random factors', () => {
  it('scores, history, Kendall τ and the rebuilt F match the dense formulas', async () => {
    const { device } = gpu;
    const total = packedLayout(null).total;
    const buffer = createTensor(device, 'test.loraGrads', [total]);
    const { grads } = packedLayout(buffer);
    const scorer = new IgiaScorer(device, config, grads, { rank: RANK, maxSteps: STEPS });

    const rand = rng(7);
    const L = config.numLayers;
    const sqSum = grads.map(() => 0);
    const normSum = grads.map(() => 0);
    const fRef = grads.map((g) => new Float64Array(linearShape(config, g.module).reduce((a, b) => a * b, 1)));
    const stepSq: number[][] = [];
    for (let s = 0; s < STEPS; s++) {
      const data = new Float32Array(total);
      // Step 0 has zero gradients (B = 0 at the start of a run); later steps differ in scale per layer.
      if (s > 0) for (let i = 0; i < total; i++) data[i] = rand() * 0.1;
      upload(device, buffer, data);
      stepSq.push(
        grads.map((g, slot) => {
          const [out, inp] = linearShape(config, g.module);
          const gA = data.subarray(g.gA.offset!, g.gA.offset! + RANK * inp);
          const gB = data.subarray(g.gB.offset!, g.gB.offset! + out * RANK);
          const S = product(gA, gB, out, inp);
          let sq = 0;
          for (let e = 0; e < S.length; e++) {
            sq += S[e] * S[e];
            fRef[slot][e] += (S[e] * S[e]) / STEPS;
          }
          sqSum[slot] += sq;
          normSum[slot] += Math.sqrt(sq);
          return sq;
        }),
      );
      const encoder = device.createCommandEncoder();
      scorer.record(encoder);
      device.queue.submit([encoder.finish()]);
    }
    const scores = await scorer.readScores();
    gpu.throwIfFailed();

    const layerRef = new Array(L).fill(0);
    const codeRef = new Array(L).fill(0);
    grads.forEach((g, slot) => {
      layerRef[g.layer] += sqSum[slot] / STEPS;
      codeRef[g.layer] += normSum[slot];
      expect(scores.moduleScore[g.layer][LINEAR_MODULES.indexOf(g.module)]).toBeCloseTo(sqSum[slot] / STEPS, 8);
      expect(Math.abs(scores.moduleScore[g.layer][LINEAR_MODULES.indexOf(g.module)] / (sqSum[slot] / STEPS) - 1)).toBeLessThan(1e-5);
    });
    expect(relErr(scores.layerScore, layerRef)).toBeLessThan(1e-5);
    expect(relErr(scores.layerScoreCode, codeRef)).toBeLessThan(1e-5);
    expect(scores.steps).toBe(STEPS);

    const cum = new Array(L).fill(0);
    const historyRef = stepSq.map((row, s) => {
      grads.forEach((g, slot) => (cum[g.layer] += row[slot]));
      return cum.map((c) => c / (s + 1));
    });
    expect(scores.history[0]).toEqual([0, 0, 0]);
    for (let s = 1; s < STEPS; s++) expect(relErr(scores.history[s], historyRef[s])).toBeLessThan(1e-5);
    expect(scores.kendall[STEPS - 1]).toBe(1);
    for (let s = 1; s < STEPS; s++) expect(scores.kendall[s]).toBeCloseTo(kendallTau(historyRef[s], historyRef[STEPS - 1]), 12);

    // F rebuilt on the GPU for every kept-factor module (layers 1, 2) vs (1/t) Σ_s S_s ⊙ S_s.
    for (const [slot, g] of grads.entries()) {
      if (g.layer === 0) continue;
      const F = scorer.rebuildImportance(g.layer, g.module);
      const got = await readback(device, F);
      F.buffer.destroy();
      expect(relErr(got, fRef[slot])).toBeLessThan(1e-5);
    }
    // The merge takes rebuilt F straight from the GPU: layer 2 into 1, checked against a CPU merge on the same F.
    const plan = makePlan([3, 2, 1], config, { prune: 1, merge: 1 });
    const weights = new Map<string, Float32Array>();
    const rebuilt = new Map<string, Float32Array>();
    const result = await mergeLayers(device, plan, config, {
      readWeight: async (name) => {
        if (!weights.has(name)) weights.set(name, Float32Array.from({ length: linearSize(name) }, () => rand()));
        return weights.get(name)!;
      },
      importance: async (layer, m) => {
        const F = scorer.rebuildImportance(layer, m);
        rebuilt.set(m, await readback(device, F));
        return F;
      },
    });
    for (const m of LINEAR_MODULES) {
      const f = rebuilt.get(m)!;
      const wr = weights.get(linearWeightName(1, m))!;
      const wp = weights.get(linearWeightName(2, m))!;
      const threshold = [...f].sort((a, b) => b - a)[Math.floor(0.2 * f.length) - 1];
      let count = 0;
      for (let i = 0; i < f.length; i++) if (f[i] >= threshold && wr[i] * wp[i] > 0) count++;
      expect(result.addedElements[`2->1.${m}`]).toBe(count);
    }
    expect(() => scorer.rebuildImportance(0, 'q_proj')).toThrow(/No gradient factors were kept for layer 0 q_proj/);
    expect(() => scorer.record(device.createCommandEncoder())).toThrow(/set up for 4 steps/);
    gpu.throwIfFailed();
    scorer.destroy();
    buffer.buffer.destroy();
  });

  it('refuses a bad rank or step count, and scores before any step', () => {
    const { grads } = packedLayout(createTensor(gpu.device, 'test.tiny', [4]));
    expect(() => new IgiaScorer(gpu.device, config, grads, { rank: 0, maxSteps: 2 })).toThrow(/LoRA rank 0 must be a positive integer/);
    expect(() => new IgiaScorer(gpu.device, config, grads, { rank: RANK, maxSteps: 0 })).toThrow(/scoring steps 0 must be ≥ 1/);
    const scorer = new IgiaScorer(gpu.device, config, grads, { rank: RANK, maxSteps: 2, keepFactors: false });
    return expect(scorer.readScores()).rejects.toThrow(/No IGIA steps were recorded/);
  });

  it('refuses a factor store over the memory allowance, saying how many steps fit', () => {
    const { grads } = packedLayout(createTensor(gpu.device, 'test.small', [4]));
    let err: unknown;
    try {
      new IgiaScorer(gpu.device, config, grads, { rank: RANK, maxSteps: 1000, maxFactorBytes: 1 << 20 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GradPruneError);
    expect((err as GradPruneError).code).toBe('memory');
    // Per step: layers 1 and 2, each Σ_modules r·(in + out) = 5·(60 + 40 + 40 + 60 + 67 + 67 + 67) floats.
    const perStep = 2 * RANK * (60 + 40 + 40 + 60 + 67 + 67 + 67) * 4;
    expect((err as Error).message).toContain(`at most ${Math.floor((1 << 20) / perStep)} steps`);
  });
});
