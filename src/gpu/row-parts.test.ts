// planRowParts (pure): how a (rows, cols) matrix is split so each part fits one storage binding.

import { describe, expect, it } from 'vitest';
import { GradPruneError } from '../errors';
import { planRowParts } from './tensor';

const GiB = 2 ** 30;

describe('planRowParts', () => {
  it('keeps a matrix that fits one binding whole', () => {
    expect(planRowParts(151936, 896, 2, GiB)).toEqual([{ rowStart: 0, rows: 151936 }]); // Qwen2.5-0.5B embedding, f16
    expect(planRowParts(7, 3, 2, 44)).toEqual([{ rowStart: 0, rows: 7 }]); // 42 bytes round up to 44
  });

  it('splits the Llama-3-8B embedding in f32 (1.96 GiB) into parts under SwiftShader’s 1 GiB binding, rows a multiple of 64', () => {
    const [V, C] = [128256, 4096];
    const parts = planRowParts(V, C, 4, GiB);
    expect(parts.map((p) => p.rows)).toEqual([64128, 64128]);
    let next = 0;
    for (const p of parts) {
      expect(p.rowStart).toBe(next);
      expect(p.rowStart % 64).toBe(0);
      expect(p.rows * C * 4).toBeLessThanOrEqual(GiB);
      next += p.rows;
    }
    expect(next).toBe(V);
    // f16 (0.98 GiB) fits whole; Qwen2.5-7B's f32 embedding (151936 × 3584, 2.03 GiB) needs three parts.
    expect(planRowParts(V, C, 2, GiB).length).toBe(1);
    expect(planRowParts(151936, 3584, 4, GiB).length).toBe(3);
  });

  it('balances the parts (all but the last equal)', () => {
    expect(planRowParts(300, 12, 4, 128 * 48)).toEqual([
      { rowStart: 0, rows: 128 },
      { rowStart: 128, rows: 128 },
      { rowStart: 256, rows: 44 },
    ]);
    expect(planRowParts(1000, 1, 4, 3000).map((p) => p.rows)).toEqual([512, 488]);
  });

  it('refuses when not even 64 rows fit a binding', () => {
    expect(() => planRowParts(1000, 100, 4, 63 * 400)).toThrowError(GradPruneError);
  });
});
