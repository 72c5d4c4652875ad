// The CPU reference's RMSNorm backward (src/nn/kernels/rmsnorm.cpu.ts) in f32 storage, as the reference model runs
// it, against central finite differences, at the hidden size and per head (Qwen3's q/k norm: rows N·NH of width
// head_dim), so the gradient the GPU engine is checked against is itself checked.
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../random';
import { relL2 } from './compare';
import { rmsnormBackward, rmsnormForward } from '../kernels/rmsnorm.cpu';

describe('rmsnormBackward (CPU reference)', () => {
  it.each([
    ['hidden size', 6, 64],
    ['per head (Qwen3 q/k norm: rows B·T·NH, C = head_dim 24)', 3 * 4, 24],
  ])('matches finite differences of Σ g ⊙ rmsnorm(x), %s', (_, rows, C) => {
    const rand = seededRandom(7);
    const u = () => rand() * 2 - 1;
    const x = Float32Array.from({ length: rows * C }, u);
    const w = Float32Array.from({ length: C }, () => 0.5 + rand());
    const g = Float32Array.from({ length: rows * C }, u); // dLoss/dout for L = Σ g ⊙ out
    const eps = 1e-6;
    const loss = (xs: Float32Array) => {
      const out = new Float32Array(rows * C), rstd = new Float32Array(rows);
      rmsnormForward(out, rstd, xs, w, rows, C, eps);
      return out.reduce((s, v, i) => s + v * g[i], 0);
    };
    const out = new Float32Array(rows * C), rstd = new Float32Array(rows);
    rmsnormForward(out, rstd, x, w, rows, C, eps);
    const dx = new Float32Array(rows * C);
    rmsnormBackward(dx, null, g, x, w, rstd, rows, C);
    const fd = new Float32Array(rows * C);
    const h = 1e-3;
    for (let i = 0; i < x.length; i++) {
      const o = x[i];
      x[i] = o + h; const lp = loss(x);
      x[i] = o - h; const lm = loss(x);
      x[i] = o;
      fd[i] = (lp - lm) / (2 * h);
    }
    expect(relL2(dx, fd)).toBeLessThanOrEqual(1e-3);
  });
});
