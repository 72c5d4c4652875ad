import { describe, expect, it } from 'vitest';
import { DEFAULT_SCORING_SETTINGS, resolveScoringSettings } from '../gradprune/pipeline';
import { DEFAULT_SETTINGS, warmupFor } from './defaults';

describe('the page\'s scoring defaults', () => {
  it('are the engine\'s (the paper\'s), warmup included', () => {
    expect(DEFAULT_SETTINGS).toEqual(resolveScoringSettings({}));
    expect({ ...DEFAULT_SETTINGS, warmupSteps: undefined }).toEqual({ ...DEFAULT_SCORING_SETTINGS, warmupSteps: undefined });
    expect(warmupFor(100)).toBe(resolveScoringSettings({ steps: 100 }).warmupSteps);
  });
});
