// Recovery settings: defaults, steps from epochs, and every bad value named.
import { describe, expect, it } from 'vitest';
import { DEFAULT_RECOVERY_SETTINGS, recoverySplit, resolveRecoverySettings } from './recovery';

describe('resolveRecoverySettings', () => {
  it("fills in the paper's LoRA (rank 8, alpha 32, all modules, lr 1e-4) and 3% warmup", () => {
    const s = resolveRecoverySettings({ steps: 200 }, 1000);
    expect(s).toMatchObject({ steps: 200, epochs: null, rank: 8, alpha: 32, lr: 1e-4, warmupSteps: 6, heldOut: 0.1, schedule: 'linear' });
    expect(s.modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    expect(resolveRecoverySettings({}, 10).steps).toBe(DEFAULT_RECOVERY_SETTINGS.steps);
  });

  it('turns epochs into steps over the training examples: ceil(epochs · n / batch)', () => {
    expect(resolveRecoverySettings({ epochs: 2, batchSize: 4 }, 10)).toMatchObject({ steps: 5, epochs: 2 });
    expect(resolveRecoverySettings({ epochs: 0.5, batchSize: 8, schedule: 'constant' }, 3)).toMatchObject({ steps: 1, epochs: 0.5 });
  });

  it('names each bad setting', () => {
    expect(() => resolveRecoverySettings({ steps: 10, epochs: 1 }, 10)).toThrow(/either a number of steps \(10\) or of epochs \(1\), not both/);
    expect(() => resolveRecoverySettings({ epochs: -1 }, 10)).toThrow(/number of epochs must be a positive number \(got -1\)/);
    expect(() => resolveRecoverySettings({ epochs: 1 }, 0)).toThrow(/no training examples to count epochs over/);
    expect(() => resolveRecoverySettings({ steps: 0 }, 10)).toThrow(/number of steps must be a whole number ≥ 1 \(got 0\)/);
    expect(() => resolveRecoverySettings({ seqLen: 1 }, 10)).toThrow(/at least 2 tokens/);
    expect(() => resolveRecoverySettings({ heldOut: 1.5 }, 10)).toThrow(/held-out share must be a fraction in \[0, 1\) or a whole count \(got 1\.5\)/);
    expect(() => resolveRecoverySettings({ steps: 4, warmupSteps: 4 }, 10)).toThrow(/4 warmup steps leave none of the 4 steps for the linear decay/);
    expect(() => resolveRecoverySettings({ rank: 0 }, 10)).toThrow(/LoRA rank must be a positive integer/);
    expect(() => resolveRecoverySettings({ lr: -1 }, 10)).toThrow(/learning rate must be a non-negative number/);
    expect(() => resolveRecoverySettings({ maxGradNorm: 0 }, 10)).toThrow(/clipping norm must be > 0/);
  });
});

describe('recoverySplit', () => {
  it('holds out the share or count asked for, seeded, in file order', () => {
    const items = [...Array(20).keys()];
    const a = recoverySplit(items, { heldOut: 0.25, seed: 1 });
    expect(a.heldOut).toHaveLength(5);
    expect(a.train).toHaveLength(15);
    expect([...a.heldOut].sort((x, y) => x - y)).toEqual(a.heldOut);
    expect(recoverySplit(items, { heldOut: 0.25, seed: 1 })).toEqual(a);
    expect(recoverySplit(items, { heldOut: 3, seed: 1 }).heldOut).toHaveLength(3);
    expect(() => recoverySplit(items, { heldOut: 20, seed: 1 })).toThrow(/Holding out 20 of 20 examples leaves none to train on/);
  });
});
