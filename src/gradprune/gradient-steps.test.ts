// Which scoring steps carry gradient information (B = 0 at the start, as PEFT initialises it), and that scores.json
// and the recipe record it with the data's template and EOS setting.
import { describe, expect, it } from 'vitest';
import { resolveScoringSettings } from '../nn/run-settings';
import type { ScoringResult } from './pipeline';
import { gradientSteps, gradientStepsWarning, MIN_GRADIENT_STEPS, plannedGradientSteps } from './gradient-steps';
import { buildRecipe } from './recipe';
import { scoresDocument } from './scores-file';

describe('steps with gradient information', () => {
  it("the fixtures' run (lr 1e-3 · min(1, s/2), 12 steps): steps 0 and 1 add nothing, 10 steps inform IGIA", () => {
    // ../shared/fixtures/README.md: "B = 0 … S = 0 until B has moved: in the fixtures' run that is steps 0 and 1".
    const lrs = Array.from({ length: 12 }, (_, s) => 1e-3 * Math.min(1, s / 2));
    expect(gradientSteps(lrs)).toBe(10);
    expect(plannedGradientSteps({ lr: 1e-3, warmupSteps: 2, schedule: 'constant', steps: 12 })).toBe(10);
    expect(gradientSteps(lrs, true)).toBe(12); // from a trained adapter (--lora-init) every step counts
    expect(gradientSteps([0, 0, 0])).toBe(0);
  });

  it('a 3-step run with the default 3% warmup scores from one batch, and says so', () => {
    const s = resolveScoringSettings({ steps: 3 });
    expect(s.warmupSteps).toBe(1);
    expect(plannedGradientSteps(s)).toBe(1);
    expect(gradientStepsWarning(1, 3)).toMatch(/^only 1 of 3 scoring steps carries gradient information .*rests on one batch/);
    expect(gradientStepsWarning(MIN_GRADIENT_STEPS, 40)).toBeNull();
    expect(plannedGradientSteps(resolveScoringSettings({}))).toBe(38); // the paper's 40 steps, 2 of warmup
  });

  it('scores.json records the informative steps, the warning and how the data was read; the recipe carries it on', () => {
    const lrs = [0, 5e-5, 1e-4];
    const result = {
      modelFingerprint: 'f00', settings: resolveScoringSettings({ steps: 3 }), steps: 3,
      layerScores: [1, 2], layerScoresCode: [1, 2], moduleScores: [[0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 2]],
      losses: [1, 1, 1], lrs, gradNorms: [1, 1, 1], history: [], kendall: [], tokens: 10, targetTokens: 5, elapsedSeconds: 1,
    } as unknown as ScoringResult;
    const data = { fileName: 'fin.csv', sha256: 'abc', rows: 2, format: 'multiple-choice', template: 'Sentence: {sentence}\nAnswer: {label}', appendEos: false };
    const doc = JSON.parse(JSON.stringify(scoresDocument(result, { name: 'tiny', architecture: 'LlamaForCausalLM', numLayers: 2 }, { data })));
    expect(doc.gradientSteps).toBe(1);
    expect(doc.gradientStepsWarning).toMatch(/^only 1 of 3/);
    expect(doc.data).toEqual(data);
    const plan = { numLayers: 2, kept: [0], pruned: [1], merged: [], dropped: [1], receiver: {}, keepFraction: 0.2, protectLast: false, before: {}, after: {}, contextLength: 1 };
    const recipe = buildRecipe({ baseModel: 'tiny', settings: {}, data, scores: { layerScore: [1, 2] } }, plan as never, 'sha', 'F32');
    expect(recipe.data).toEqual({ file: 'fin.csv', sha256: 'abc', rows: 2, format: 'multiple-choice', template: data.template, append_eos: false });
  });
});
