// The CPU reference's 12-step GradPruner scoring run (clip + AdamW) and IGIA scores against gradprune.safetensors.
import { describe, expect, it } from 'vitest';
import { DEFAULT_LORA } from '../lora';
import { SCORED_FIXTURE_MODELS, fixtureDir } from '../../testing/paths';
import { ranking, relError, relL2 } from './compare';
import { referenceFixtureScoring } from './fixture';
import { igiaFromSteps } from './igia';

describe.each(SCORED_FIXTURE_MODELS)('CPU reference scoring run on %s', (name) => {
  const dir = fixtureDir(name);

  it('matches the per-step loss, lr and grad norm, and the IGIA matrices and scores', async () => {
    const { config, ref, adapters, steps } = await referenceFixtureScoring(dir);

    const refLoss = await ref.readF32('loss');
    const refLr = await ref.readF32('lr');
    const refNorm = await ref.readF32('grad_norm');
    steps.forEach((s, i) => {
      expect(relError(s.loss, refLoss[i]), `loss of step ${i}`).toBeLessThanOrEqual(1e-4);
      expect(Math.fround(s.lr), `lr of step ${i}`).toBe(refLr[i]);
      expect(relError(s.gradNorm, refNorm[i]), `grad norm of step ${i}`).toBeLessThanOrEqual(1e-4);
    });

    const igia = igiaFromSteps(steps.map((s) => s.grads), adapters, config.numLayers, DEFAULT_LORA.rank);
    for (const a of adapters) {
      expect(relL2(igia.igia.get(a.name)!, await ref.readF32(`igia.${a.name}.weight`)), `IGIA of ${a.name}`).toBeLessThanOrEqual(1e-3);
    }
    const layerScore = await ref.readF32('layer_score');
    const moduleScore = await ref.readF32('module_score');
    const layerScoreCode = await ref.readF32('layer_score_code');
    igia.layerScore.forEach((v, l) => expect(relError(v, layerScore[l]), `layer_score[${l}]`).toBeLessThanOrEqual(1e-3));
    igia.moduleScore.forEach((v, i) => expect(relError(v, moduleScore[i]), `module_score[${i}]`).toBeLessThanOrEqual(1e-3));
    igia.layerScoreCode.forEach((v, l) => expect(relError(v, layerScoreCode[l]), `layer_score_code[${l}]`).toBeLessThanOrEqual(1e-3));
    expect(ranking(igia.layerScore)).toEqual(ranking(layerScore));
  });
});
