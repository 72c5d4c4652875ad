import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { LINEAR_MODULES } from '../model/config';
import { resolveScoringSettings, scheduleOf } from './pipeline';

const message = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(GradPruneError);
    return (e as Error).message;
  }
  throw new Error('expected a GradPruneError');
};

describe('scoring settings', () => {
  it('defaults to the paper: rank 8, alpha 32, seven modules, lr 1e-4, wd 0.1, 3% warmup, clip 1, 40 steps of 4 × 256', () => {
    const s = resolveScoringSettings();
    expect(s).toMatchObject({ steps: 40, rank: 8, alpha: 32, lr: 1e-4, weightDecay: 0.1, maxGradNorm: 1, batchSize: 4, seqLen: 256, schedule: 'constant', shuffle: true });
    expect(s.modules).toEqual([...LINEAR_MODULES]);
    expect(s.warmupSteps).toBe(2); // ceil(0.03 · 40), as transformers' warmup_ratio
    expect(resolveScoringSettings({ steps: 100 }).warmupSteps).toBe(3);
    expect(resolveScoringSettings({ steps: 12, warmupSteps: 0 }).warmupSteps).toBe(0);
    expect(scheduleOf(resolveScoringSettings({ steps: 12, schedule: 'cosine' }))).toEqual({ lr: 1e-4, warmupSteps: 1, decay: 'cosine', totalSteps: 12 });
  });
  it('names the setting that is wrong', () => {
    expect(message(() => resolveScoringSettings({ steps: 0 }))).toBe('The number of steps must be a whole number ≥ 1 (got 0).');
    expect(message(() => resolveScoringSettings({ batchSize: 2.5 }))).toBe('The batch size must be a whole number ≥ 1 (got 2.5).');
    expect(message(() => resolveScoringSettings({ seqLen: 1 }))).toBe('The sequence length must be at least 2 tokens (got 1).');
    expect(message(() => resolveScoringSettings({ maxGradNorm: -1 }))).toBe('The gradient clipping norm must be > 0 (got -1).');
    expect(message(() => resolveScoringSettings({ rank: 0 }))).toMatch(/^LoRA rank must be a positive integer \(got 0\)/);
    expect(message(() => resolveScoringSettings({ lr: -1 }))).toMatch(/^The learning rate must be a non-negative number \(got -1\)/);
    expect(message(() => resolveScoringSettings({ steps: 4, warmupSteps: 4, schedule: 'linear' }))).toMatch(/^4 warmup steps leave none of the 4 steps for the linear decay\./);
  });
});
