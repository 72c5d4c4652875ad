// The matmul family on the GPU against the CPU references, at ragged sizes (not multiples of the 64×64 tile).

import { describe, expect, it } from 'vitest';
import { createTensor } from '../../gpu/tensor';
import { checkKernel, TUNINGS } from '../../testing/kernels';
import { testGpu } from '../../testing/gpu';
import { kernelLib, linearBackward, linearForward, loraBackward, loraForward, matmul } from './index';
import * as cpu from './matmul.cpu';

const [N, IC, OC, r, scale] = [37, 70, 131, 5, 4];
const TOL = 2e-5;

const gpu = await testGpu();

for (const [tuningName, tuning] of TUNINGS) {
  describe(tuningName, () => {
    const k = kernelLib(gpu, tuning);

    describe('matmul family (f32)', () => {
      it('matmul: every transpose combination, accumulate with alpha', async () => {
        const [M, Nn, K] = [67, 9, 130];
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            // The same stored data read with the other layout is a different matrix, so each combination checks its own.
            const o = { transA, transB, accumulate: true, alpha: 0.5 };
            await checkKernel(gpu, {
              shapes: { c: [M, Nn], a: [M * K], b: [K * Nn] },
              gpu: (t) => [matmul(k, 't', { ...t, M, N: Nn, K, ...o })],
              ref: (x) => cpu.matmul(x.c, x.a, x.b, M, Nn, K, o),
              tolerance: { c: TOL },
            });
          }
        }
      });

      for (const withBias of [true, false]) {
        it(`linearForward ${withBias ? 'with' : 'without'} bias`, () =>
          checkKernel(gpu, {
            shapes: { out: [N, OC], inp: [N, IC], w: [OC, IC], bias: [OC] },
            gpu: (t) => linearForward(k, t.out, t.inp, t.w, withBias ? t.bias : null),
            ref: (x) => cpu.linearForward(x.out, x.inp, x.w, withBias ? x.bias : null, N, IC, OC),
            tolerance: { out: TOL },
          }));
      }

      it('linearBackward accumulates dinp, dweight, dbias', () =>
        checkKernel(gpu, {
          shapes: { dinp: [N, IC], dweight: [OC, IC], dbias: [OC], dout: [N, OC], inp: [N, IC], w: [OC, IC] },
          gpu: (t) => linearBackward(k, t.dinp, t.dweight, t.dbias, t.dout, t.inp, t.w),
          ref: (x) => cpu.linearBackward(x.dinp, x.dweight, x.dbias, x.dout, x.inp, x.w, N, IC, OC),
          tolerance: { dinp: TOL, dweight: TOL, dbias: TOL },
        }));

      it('loraForward adds scale·(x·Aᵀ)·Bᵀ to the output and keeps h', () =>
        checkKernel(gpu, {
          shapes: { out: [N, OC], h: [N, r], inp: [N, IC], A: [r, IC], B: [OC, r] },
          gpu: (t) => loraForward(k, t.out, t.h, t.inp, t.A, t.B, scale),
          ref: (x) => cpu.loraForward(x.out, x.h, x.inp, x.A, x.B, N, IC, OC, r, scale),
          tolerance: { out: TOL, h: TOL },
        }));

      it('loraBackward: dA, dB, dinp accumulate; dh overwrites', () =>
        checkKernel(gpu, {
          shapes: { dinp: [N, IC], dA: [r, IC], dB: [OC, r], dh: [N, r], dout: [N, OC], inp: [N, IC], h: [N, r], A: [r, IC], B: [OC, r] },
          gpu: (t) => loraBackward(k, t.dinp, t.dA, t.dB, t.dh, t.dout, t.inp, t.h, t.A, t.B, scale),
          ref: (x) => cpu.loraBackward(x.dinp, x.dA, x.dB, x.dh, x.dout, x.inp, x.h, x.A, x.B, N, IC, OC, r, scale),
          // dA and dinp come through the f32 dh (two chained sums of ~100 terms): compare as the fixtures do, by L2.
          tolerance: { dh: TOL, dA: { relL2: 1e-5 }, dB: { relL2: 1e-5 }, dinp: { relL2: 1e-5 } },
        }));

      it('rejects tensors whose shapes disagree', () => {
        const out = createTensor(gpu.device, 'out', [N, OC + 1]);
        expect(() => linearForward(k, out, createTensor(gpu.device, 'inp', [N, IC]), createTensor(gpu.device, 'w', [OC, IC]), null)).toThrow(/out \[37, 132\]/);
      });
    });

    describe('linear with f16 weights', () => {
      // Reading f16 weights is tested on an adapter with shader-f16 in weights.f16.gpu.test.ts (the gpu-f16 tier).
      it('an f16 weight on a device without shader-f16 is refused by name', (ctx) => {
        if (gpu.adapter.shaderF16) {
          ctx.skip('this adapter has shader-f16');
          return;
        }
        const w16 = createTensor(gpu.device, 'w16', [OC, IC], 'f16');
        expect(() => linearForward(k, createTensor(gpu.device, 'out', [N, OC]), createTensor(gpu.device, 'inp', [N, IC]), w16, null)).toThrow(/w16 is f16/);
      });
    });
  });
}
