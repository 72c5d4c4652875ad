// Causal grouped-query attention on the GPU against the CPU reference, forward (out and log-sum-exp) and
// backward (dq, dk, dv accumulate), at sizes that cross the kernel's 64-wide key chunks.

import { describe, expect, it } from 'vitest';
import { createTensor } from '../../gpu/tensor';
import { checkKernel, TUNINGS } from '../../testing/kernels';
import { testGpu } from '../../testing/gpu';
import { attentionBackward as attentionBackwardCpu, attentionForward as attentionForwardCpu } from './attention.cpu';
import { attentionBackward, attentionForward, kernelLib, type AttentionShape } from './index';

const gpu = await testGpu();

for (const [tuningName, tuning] of TUNINGS) {
  describe(`${tuningName} (${tuning.attention})`, () => {
    const k = kernelLib(gpu, tuning);

    describe('attention', () => {
      for (const [name, shape] of [
        ['grouped-query, 2 query heads per kv head, T across two key chunks', { B: 2, T: 70, NH: 6, NKV: 2, HD: 20 }],
        ['multi-query with a sliding window, head_dim over 64', { B: 1, T: 67, NH: 4, NKV: 1, HD: 72, window: 13 }],
        ['multi-head, short sequence', { B: 3, T: 5, NH: 2, NKV: 2, HD: 16 }],
        ['the largest head_dim (256), three query heads per kv head', { B: 1, T: 9, NH: 3, NKV: 1, HD: 256 }],
      ] as [string, AttentionShape][]) {
        it(name, () => {
          const { B, T, NH, NKV, HD } = shape;
          const [qShape, kvShape] = [[B, T, NH, HD], [B, T, NKV, HD]];
          return checkKernel(gpu, {
            shapes: {
              out: qShape, lse: [B, NH, T], dq: qShape, dk: kvShape, dv: kvShape, delta: [B, NH, T],
              q: { shape: qShape, range: [-2, 2] }, k: { shape: kvShape, range: [-2, 2] }, v: kvShape, dout: qShape,
            },
            gpu: (t) => [
              ...attentionForward(k, t.out, t.lse, t.q, t.k, t.v, shape),
              ...attentionBackward(k, t.dq, t.dk, t.dv, t.delta, t.dout, t.out, t.q, t.k, t.v, t.lse, shape),
            ],
            ref: (x) => {
              const att = new Float64Array(B * NH * T * T); // (B, NH, T, T)
              attentionForwardCpu(x.out, x.lse, att, x.q, x.k, x.v, shape);
              attentionBackwardCpu(x.dq, x.dk, x.dv, x.dout, x.q, x.k, x.v, att, shape);
            },
            tolerance: { out: 2e-5, lse: 2e-5, dq: 5e-5, dk: 5e-5, dv: 5e-5 },
          });
        });
      }

      it('refuses a head_dim over 256', () => {
        const shape = { B: 1, T: 2, NH: 1, NKV: 1, HD: 258 };
        const t = () => createTensor(gpu.device, 't', [516]);
        expect(() => attentionForward(k, t(), createTensor(gpu.device, 'lse', [2]), t(), t(), t(), shape)).toThrow(/head_dim 258/);
      });
    });
  });
}
