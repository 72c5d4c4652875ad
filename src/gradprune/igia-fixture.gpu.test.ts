// End to end on the fixtures: the CPU reference trainer's clipped per-step LoRA gradients go through the GPU
// IGIA kernels; the scores, the rebuilt F, the plan and the merged weights are checked against the
// Hugging Face + PEFT reference (gradprune.safetensors, gradprune.json, pruned_*.safetensors).
import { describe, expect, it } from 'vitest';
import { createTensor, upload, type Tensor } from '../gpu/tensor';
import { LINEAR_MODULES, linearWeightName } from '../model/config';
import { DEFAULT_LORA } from '../nn/lora';
import { countMismatches, MAX_FLIPPED_FRACTION, ranking, relError, relL2 } from '../nn/reference/compare';
import { openReference, referenceFixtureScoring } from '../nn/reference/fixture';
import { readback } from '../gpu/tensor';
import { SCORED_FIXTURE_MODELS, fixtureDir } from '../testing/paths';
import { IgiaScorer, type IgiaModuleGrads } from './igia';
import { mergeLayers } from './merge';
import { makePlan } from './plan';
import { testGpu } from '../testing/gpu';

const gpu = await testGpu();

describe('GPU IGIA on the reference trainer gradients vs gradprune.safetensors', () => {
  for (const name of SCORED_FIXTURE_MODELS) {
    it(name, async () => {
      const { device } = gpu;
      const dir = fixtureDir(name);
      const { config, store, ref, refJson, adapters, steps } = await referenceFixtureScoring(dir);
      const S = steps.length;

      // One gradient tensor per LoRA matrix (the unpacked layout).
      const rank = DEFAULT_LORA.rank;
      const buffers = new Map<string, { dA: Tensor; dB: Tensor }>();
      const grads: IgiaModuleGrads[] = adapters.map((a) => {
        const dA = createTensor(device, `${a.name}.dA`, [rank, a.inFeatures]);
        const dB = createTensor(device, `${a.name}.dB`, [a.outFeatures, rank]);
        buffers.set(a.name, { dA, dB });
        return { layer: a.layer, module: a.module, gA: { buffer: dA }, gB: { buffer: dB } };
      });
      const scorer = new IgiaScorer(device, config, grads, { rank, maxSteps: S });
      for (const step of steps) {
        for (const a of adapters) {
          const g = step.grads.get(a.name)!;
          upload(device, buffers.get(a.name)!.dA, g.dA);
          upload(device, buffers.get(a.name)!.dB, g.dB);
        }
        const encoder = device.createCommandEncoder();
        scorer.record(encoder);
        device.queue.submit([encoder.finish()]);
      }
      const scores = await scorer.readScores();
      gpu.throwIfFailed();

      const layerScore = await ref.readF32('layer_score');
      const moduleScore = await ref.readF32('module_score');
      const layerScoreCode = await ref.readF32('layer_score_code');
      scores.layerScore.forEach((v, l) => expect(relError(v, layerScore[l]), `layer_score[${l}]`).toBeLessThanOrEqual(1e-3));
      scores.layerScoreCode.forEach((v, l) => expect(relError(v, layerScoreCode[l]), `layer_score_code[${l}]`).toBeLessThanOrEqual(1e-3));
      scores.moduleScore.flat().forEach((v, i) => expect(relError(v, moduleScore[i]), `module_score[${i}]`).toBeLessThanOrEqual(1e-3));
      expect(ranking(scores.layerScore)).toEqual(ranking(layerScore));
      expect(scores.kendall[S - 1]).toBe(1);

      // The plan from the GPU scores, F rebuilt from the stored factors, the merge: the reference pruned model.
      for (const p of refJson.plans as { tag: string; prune: number; merge: number; merged_layers: number[] }[]) {
        const plan = makePlan(scores.layerScore, config, { prune: p.prune, merge: p.merge });
        expect(plan.merged).toEqual(p.merged_layers);
        const result = await mergeLayers(device, plan, config, {
          readWeight: (n) => store.readF32(n),
          importance: async (layer, m) => {
            const F = scorer.rebuildImportance(layer, m);
            const want = await ref.readF32(`igia.${linearWeightName(layer, m)}`);
            expect(relL2(await readback(device, F), want), `F of layer ${layer} ${m}`).toBeLessThanOrEqual(1e-3);
            return F;
          },
        });
        const expected = await openReference(dir, `pruned_${p.tag}.safetensors`);
        for (const r of new Set(Object.values(plan.receiver))) {
          for (const m of LINEAR_MODULES) {
            const got = result.weights.get(linearWeightName(r, m))!;
            const want = await expected.readF32(linearWeightName(plan.newIndex[r]!, m));
            const flipped = countMismatches(got, want);
            expect(flipped / want.length, `${p.tag} layer ${r} ${m}`).toBeLessThanOrEqual(MAX_FLIPPED_FRACTION);
          }
        }
      }
      gpu.throwIfFailed();
      scorer.destroy();
      for (const { dA, dB } of buffers.values()) {
        dA.buffer.destroy();
        dB.buffer.destroy();
      }
    });
  }
});
