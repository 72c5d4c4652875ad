// GradPruner's importance statistics from per-step clipped LoRA gradients (CPU reference for the GPU IGIA path).
//   S_s = gB_s · gA_s                          (out, in) for each module, step s
//   F   = (1/t) Σ_s S_s ⊙ S_s                  the IGIA matrix
//   module_score[L][m] = Σ F,  layer_score[L] = Σ_m module_score[L][m]
//   layer_score_code[L] = Σ_s Σ_m ‖S_s‖_F      (the authors' released script)

import { LINEAR_MODULES, type LinearModule } from '../../model/config';
import { adapterName } from '../lora';

export interface StepGrad {
  dA: Float32Array; // (r, in)
  dB: Float32Array; // (out, r)
}

export interface AdapterShape {
  layer: number;
  module: LinearModule;
  inFeatures: number;
  outFeatures: number;
}

export interface IgiaResult {
  /** F per adapter name ((out, in), row-major), present only when requested. */
  igia: Map<string, Float32Array>;
  layerScore: Float64Array; // (L)
  moduleScore: Float64Array; // (L, 7) in LINEAR_MODULES order
  layerScoreCode: Float64Array; // (L)
}

/** S = gB·gA.   S (out, in), gB (out, r), gA (r, in) */
export function gradProduct(gA: Float32Array, gB: Float32Array, out: number, inp: number, rank: number): Float64Array {
  const S = new Float64Array(out * inp);
  for (let o = 0; o < out; o++) {
    for (let j = 0; j < rank; j++) {
      const b = gB[o * rank + j];
      if (b === 0) continue;
      for (let i = 0; i < inp; i++) S[o * inp + i] += b * gA[j * inp + i];
    }
  }
  return S;
}

/**
 * IGIA from the clipped gradients of every step. `steps[s]` maps adapter name → that step's gradients.
 * `keepMatrices` lists the adapter names whose F to return (all when omitted; none with an empty list).
 */
export function igiaFromSteps(
  steps: ReadonlyArray<ReadonlyMap<string, StepGrad>>,
  adapters: readonly AdapterShape[],
  numLayers: number,
  rank: number,
  keepMatrices?: ReadonlySet<string>,
): IgiaResult {
  const t = steps.length;
  const layerScore = new Float64Array(numLayers);
  const moduleScore = new Float64Array(numLayers * LINEAR_MODULES.length);
  const layerScoreCode = new Float64Array(numLayers);
  const igia = new Map<string, Float32Array>();
  for (const a of adapters) {
    const name = adapterName(a.layer, a.module);
    const F = new Float64Array(a.outFeatures * a.inFeatures);
    for (const step of steps) {
      const g = step.get(name);
      if (!g) throw new Error(`igiaFromSteps: step has no gradient for ${name}`);
      const S = gradProduct(g.dA, g.dB, a.outFeatures, a.inFeatures, rank);
      let fro2 = 0;
      for (let i = 0; i < S.length; i++) {
        const sq = S[i] * S[i];
        F[i] += sq;
        fro2 += sq;
      }
      layerScoreCode[a.layer] += Math.sqrt(fro2);
    }
    let sum = 0;
    for (let i = 0; i < F.length; i++) sum += (F[i] /= t);
    moduleScore[a.layer * LINEAR_MODULES.length + LINEAR_MODULES.indexOf(a.module)] = sum;
    layerScore[a.layer] += sum;
    if (!keepMatrices || keepMatrices.has(name)) igia.set(name, Float32Array.from(F));
  }
  return { igia, layerScore, moduleScore, layerScoreCode };
}
