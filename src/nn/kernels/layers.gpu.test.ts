// Embedding, RMSNorm, RoPE, SwiGLU, residual and buffer utilities on the GPU against the CPU references,
// forward and backward, at odd sizes.

import { describe, expect, it } from 'vitest';
import { checkKernel, randomInts, TUNINGS } from '../../testing/kernels';
import { testGpu } from '../../testing/gpu';
import { swigluBackward as swigluBackwardCpu, swigluForward as swigluForwardCpu } from './elementwise.cpu';
import { embeddingForward as embeddingForwardCpu } from './embedding.cpu';
import {
  accumulate, copy, embeddingForward, fill, kernelLib, residualBackward, residualForward, rmsnormBackward, rmsnormForward, ropeBackward,
  ropeForward, ropeTables, swigluBackward, swigluForward,
} from './index';
import { rmsnormBackward as rmsnormBackwardCpu, rmsnormForward as rmsnormForwardCpu } from './rmsnorm.cpu';
import { ropeBackward as ropeBackwardCpu, ropeForward as ropeForwardCpu } from './rope.cpu';

const [B, T, C, V, NH, HD, I] = [2, 7, 45, 19, 3, 10, 53];
const TOL = 2e-5;

const gpu = await testGpu();

for (const [tuningName, tuning] of TUNINGS) {
  describe(tuningName, () => {
    const k = kernelLib(gpu, tuning);

    describe('embedding', () => {
      it('embeddingForward gathers rows of wte; ids outside the vocabulary give zeros', async () => {
        const ids = randomInts(B * T, 1, V);
        ids[3] = V; // out of range
        const { got } = await checkKernel(gpu, {
          shapes: { out: [B, T, C], ids: { shape: [B, T], data: ids }, wte: [V, C] },
          gpu: (t) => embeddingForward(k, t.out, t.ids, t.wte),
          ref: (x) => embeddingForwardCpu(x.out, x.ids, x.wte, V, C),
          tolerance: { out: 0 },
        });
        expect(got.out.slice(3 * C, 4 * C).every((x) => x === 0)).toBe(true);
      });
      // embeddingForward with an f16 wte: weights.f16.gpu.test.ts (the gpu-f16 tier, on an adapter with shader-f16).
    });

    describe('rmsnorm', () => {
      for (const [name, rows, cols] of [
        ['over the hidden size', B * T, C],
        ['per head (Qwen3 q/k norm: rows B·T·NH, C = head_dim)', B * T * NH, HD],
        ['over a row wider than the workgroup', 3, 600],
      ] as [string, number, number][]) {
        it(`forward and backward ${name}`, () => {
          const eps = 1e-6;
          return checkKernel(gpu, {
            shapes: { out: [rows, cols], rstd: [rows], dinp: [rows, cols], dweight: [cols], dout: [rows, cols], inp: { shape: [rows, cols], range: [-2, 2] }, w: { shape: [cols], range: [0.5, 1.5] } },
            gpu: (t) => [...rmsnormForward(k, t.out, t.rstd, t.inp, t.w, eps), ...rmsnormBackward(k, t.dinp, t.dweight, t.dout, t.inp, t.w, t.rstd)],
            ref: (x) => {
              rmsnormForwardCpu(x.out, x.rstd, x.inp, x.w, rows, cols, eps);
              rmsnormBackwardCpu(x.dinp, x.dweight, x.dout, x.inp, x.w, x.rstd, rows, cols);
            },
            tolerance: { out: TOL, rstd: TOL, dinp: TOL, dweight: TOL },
          });
        });
      }
    });

    describe('rope', () => {
      it('forward and backward, rotate-half layout, llama3-scaled tables', () => {
        const rope = { type: 'llama3' as const, theta: 500000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 };
        const { cos, sin } = ropeTables(rope, HD, T);
        return checkKernel(gpu, {
          shapes: { out: [B, T, NH, HD], dinp: [B, T, NH, HD], x: [B, T, NH, HD], dout: [B, T, NH, HD], cos: { shape: [T, HD], data: cos }, sin: { shape: [T, HD], data: sin } },
          gpu: (t) => [...ropeForward(k, t.out, t.x, t.cos, t.sin, T, NH), ...ropeBackward(k, t.dinp, t.dout, t.cos, t.sin, T, NH)],
          ref: (x) => {
            ropeForwardCpu(x.out, x.x, x.cos, x.sin, T, NH, HD);
            ropeBackwardCpu(x.dinp, x.dout, x.cos, x.sin, T, NH, HD);
          },
          tolerance: { out: TOL, dinp: TOL },
        });
      });
    });

    describe('elementwise', () => {
      const n = B * T * I;
      it('swiglu forward and backward', () =>
        checkKernel(gpu, {
          shapes: { out: [n], dgate: [n], dup: [n], dout: [n], gate: { shape: [n], range: [-4, 4] }, up: [n] },
          gpu: (t) => [...swigluForward(k, t.out, t.gate, t.up), ...swigluBackward(k, t.dgate, t.dup, t.dout, t.gate, t.up)],
          ref: (x) => {
            swigluForwardCpu(x.out, x.gate, x.up);
            swigluBackwardCpu(x.dgate, x.dup, x.dout, x.gate, x.up);
          },
          tolerance: { out: TOL, dgate: TOL, dup: TOL },
        }));

      it('residual forward / backward, accumulate, fill, copy', () =>
        checkKernel(gpu, {
          shapes: { out: [n], da: [n], db: [n], acc: [n], filled: [n], copied: [n], a: [n], b: [n], dout: [n] },
          gpu: (t) => [
            ...residualForward(k, t.out, t.a, t.b),
            ...residualBackward(k, t.da, t.db, t.dout),
            ...accumulate(k, t.acc, t.b),
            ...fill(k, t.filled, 0.25),
            ...copy(k, t.copied, t.a),
          ],
          ref: (x) => {
            for (let i = 0; i < n; i++) {
              x.out[i] = x.a[i] + x.b[i];
              x.da[i] += x.dout[i];
              x.db[i] += x.dout[i];
              x.acc[i] += x.b[i];
            }
            x.filled.fill(0.25);
            x.copied.set(x.a);
          },
          tolerance: { out: 1e-7, da: 1e-7, db: 1e-7, acc: 1e-7, filled: 0, copied: 0 },
        }));
    });
  });
}
