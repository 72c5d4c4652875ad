import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { resolveScoringSettings } from './run-settings';
import { resolveRecoverySettings } from './run-settings';
import { checkWeightPrecision, plannedWeightStorage, precisionLine, resolveWeightStorage } from './precision';

const withF16 = { name: 'Mesa llvmpipe', shaderF16: true };
const withoutF16 = { name: 'Google SwiftShader', shaderF16: false };

describe('weight precision', () => {
  it("'auto' is f16 on an adapter with shader-f16 and f32 on one without, saying why", () => {
    expect(resolveWeightStorage('auto', withF16)).toEqual({ storage: 'f16', reason: 'adapter has shader-f16' });
    expect(resolveWeightStorage('auto', withoutF16)).toEqual({ storage: 'f32', reason: 'adapter has no shader-f16' });
    expect(precisionLine(resolveWeightStorage('auto', withF16))).toBe('weights: f16 (adapter has shader-f16)');
    expect(precisionLine(resolveWeightStorage('auto', withoutF16))).toBe('weights: f32 (adapter has no shader-f16)');
  });

  it('an explicit f32 is kept on every adapter, an explicit f16 where the adapter has shader-f16', () => {
    expect(resolveWeightStorage('f32', withF16)).toEqual({ storage: 'f32', reason: 'chosen; adapter has shader-f16' });
    expect(resolveWeightStorage('f32', withoutF16).storage).toBe('f32');
    expect(resolveWeightStorage('f16', withF16)).toEqual({ storage: 'f16', reason: 'chosen; adapter has shader-f16' });
  });

  it('an explicit f16 without shader-f16 is a gpu error naming the adapter and what to choose instead', () => {
    const e = (() => {
      try {
        resolveWeightStorage('f16', withoutF16);
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(GradPruneError);
    expect((e as GradPruneError).code).toBe('gpu');
    expect((e as GradPruneError).subject).toBe('precision');
    expect((e as Error).message).toMatch(/f16 weights need the shader-f16 feature, which this GPU adapter \(Google SwiftShader\) does not offer/);
    expect((e as Error).message).toMatch(/--precision auto/);
  });

  it('anything but auto, f32 or f16 is an input error', () => {
    for (const bad of ['bf16', 'F16', '', undefined, 16]) {
      expect(() => checkWeightPrecision(bad), String(bad)).toThrow(/The weight precision must be one of auto, f32, f16/);
      expect(() => resolveWeightStorage(bad as never, withF16)).toThrow(GradPruneError);
    }
  });

  it('plans memory for what auto will become, and for f32 while the adapter is unknown', () => {
    expect(plannedWeightStorage('auto', withF16)).toBe('f16');
    expect(plannedWeightStorage('auto', withoutF16)).toBe('f32');
    expect(plannedWeightStorage('auto', null)).toBe('f32');
    expect(plannedWeightStorage('f16', null)).toBe('f16');
    expect(plannedWeightStorage('f32', withF16)).toBe('f32');
  });

  it('is auto by default for scoring and fine-tuning, and checked there', () => {
    expect(resolveScoringSettings({}).weights).toBe('auto');
    expect(resolveRecoverySettings({}, 100).weights).toBe('auto');
    expect(resolveScoringSettings({ weights: 'f16' }).weights).toBe('f16');
    expect(() => resolveScoringSettings({ weights: 'half' as never })).toThrow(/weight precision must be one of/);
  });
});
