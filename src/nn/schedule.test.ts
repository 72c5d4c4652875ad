import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { SCORED_FIXTURE_MODELS, fixtureDir } from '../testing/paths';
import { openReference } from './reference/fixture';
import { lrAt, SCORING_SCHEDULE, validateSchedule } from './schedule';

describe('learning-rate schedules', () => {
  it.each(SCORED_FIXTURE_MODELS)('the scoring schedule gives the lr of every step in %s/gradprune.safetensors', async (name) => {
    const lr = await (await openReference(fixtureDir(name), 'gradprune.safetensors')).readF32('lr');
    lr.forEach((v, s) => expect(Math.fround(lrAt(SCORING_SCHEDULE, s))).toBe(v));
  });

  it('linear warmup then linear decay to zero (transformers get_linear_schedule_with_warmup)', () => {
    const s = { lr: 1, warmupSteps: 4, decay: 'linear' as const, totalSteps: 12 };
    expect([0, 1, 2, 4, 8, 12, 20].map((t) => lrAt(s, t))).toEqual([0, 0.25, 0.5, 1, 0.5, 0, 0]);
  });

  it('cosine decay after warmup reaches half at the midpoint and zero at the end', () => {
    const s = { lr: 2, warmupSteps: 2, decay: 'cosine' as const, totalSteps: 12 };
    expect(lrAt(s, 1)).toBe(1);
    expect(lrAt(s, 2)).toBe(2);
    expect(lrAt(s, 7)).toBeCloseTo(1, 12);
    expect(lrAt(s, 12)).toBeCloseTo(0, 12);
  });

  it('refuses a negative lr or a decay without totalSteps', () => {
    expect(() => validateSchedule({ lr: -1, warmupSteps: 0, decay: 'constant' })).toThrow(GradPruneError);
    expect(() => validateSchedule({ lr: 1e-3, warmupSteps: 0, decay: 'cosine' })).toThrow(/totalSteps/);
    expect(() => validateSchedule({ lr: 1e-3, warmupSteps: 1.5, decay: 'constant' })).toThrow(/Warmup/);
  });
});
