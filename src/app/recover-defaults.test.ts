import { describe, expect, it } from 'vitest';
import { DEFAULT_RECOVERY_SETTINGS } from '../eval/recovery';
import { DEFAULT_RECOVER_SETTINGS } from './recover-defaults';

describe("the Recover panel's defaults", () => {
  it("are the engine's (the paper's fine-tuning)", () => {
    const { by, epochs, ...rest } = DEFAULT_RECOVER_SETTINGS;
    expect(by).toBe('steps');
    expect(epochs).toBeGreaterThan(0);
    const engine = DEFAULT_RECOVERY_SETTINGS;
    expect(rest).toEqual({ steps: engine.steps, rank: engine.rank, alpha: engine.alpha, lr: engine.lr, batchSize: engine.batchSize, seqLen: engine.seqLen, schedule: engine.schedule });
    expect(rest).toMatchObject({ rank: 8, alpha: 32, lr: 1e-4 });
  });
});
