// Run settings without a GPU: the paper's defaults (values as the GradPruner paper and /work/shared/fixtures state
// them, written out here, never read from the code), steps from epochs, and every bad value named.
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { resolveRecoverySettings, resolveScoringSettings, scheduleOf, warmupFor } from './run-settings';

const PAPER_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

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
    expect(s.modules).toEqual(PAPER_MODULES);
    expect(s).toMatchObject({ seed: 0, weights: 'auto', checkpointing: false, maxGpuMemory: null });
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

describe('resolveRecoverySettings', () => {
  it("fills in the paper's LoRA (rank 8, alpha 32, all modules, lr 1e-4) and 3% warmup", () => {
    const s = resolveRecoverySettings({ steps: 200 }, 1000);
    expect(s).toMatchObject({ steps: 200, epochs: null, rank: 8, alpha: 32, lr: 1e-4, warmupSteps: 6, heldOut: 0.1, schedule: 'linear' });
    expect(s.modules).toEqual(PAPER_MODULES);
    expect(s).toMatchObject({ weightDecay: 0.1, maxGradNorm: 1, batchSize: 4, seqLen: 256, seed: 0, shuffle: true });
    expect(resolveRecoverySettings({}, 10)).toMatchObject({ steps: 100, warmupSteps: 3 });
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

describe('warmupFor', () => {
  it("is transformers' warmup_ratio 0.03, rounded up", () => {
    expect([1, 33, 34, 40, 100, 200].map(warmupFor)).toEqual([1, 1, 2, 2, 3, 6]);
  });
});

describe('the run-settings module', () => {
  it('imports no GPU or Node code, so the studio can import it into its page bundle', () => {
    // Follow the value imports (type-only imports are erased) from the module and from the studio's defaults.
    const root = fileURLToPath(new URL('../', import.meta.url));
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(join(root, file), 'utf8');
      for (const [, specifier] of source.matchAll(/^import\s+(?!type\b)[^'"]*?from\s+'([^']+)'/gm)) {
        expect(specifier, `${file} imports ${specifier}`).toMatch(/^\./);
        visit(relative(root, resolve(dirname(join(root, file)), specifier)) + '.ts');
      }
    };
    visit('nn/run-settings.ts');
    visit('app/defaults.ts');
    expect([...seen].sort()).toEqual(['app/defaults.ts', 'errors.ts', 'model/config.ts', 'nn/lora.ts', 'nn/precision.ts', 'nn/run-settings.ts', 'nn/schedule.ts', 'random.ts']);
  });
});
