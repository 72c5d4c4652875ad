// Causal grouped-query attention on the GPU against the CPU reference, forward (out and log-sum-exp) and
// backward (dq, dk, dv accumulate), at sizes that cross the kernel's 64-wide key chunks.

import { describe, expect, it } from 'vitest';
import { createTensor } from '../../gpu/tensor';
import { attentionBackwardCpu, attentionForwardCpu } from './cpu';
import { attentionBackward, attentionForward, type AttentionShape, kernelLib } from './index';
import { addArrays, gpuTensor, maxRelErr, randomArray, runAndRead, TUNINGS } from './test-utils';
import { testGpu } from '../../testing/gpu';

const gpu = await testGpu();

/** log Σ_j exp(score) of each row, from the CPU probabilities: lse = score_ij − log P_ij for any visible j (take j = i). */
function lseFromCpu(q: Float32Array, kk: Float32Array, P: Float64Array, s: AttentionShape): Float64Array {
  const { B, T, NH, NKV, HD } = s;
  const lse = new Float64Array(B * NH * T);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < NH; h++)
      for (let i = 0; i < T; i++) {
        const g = Math.floor(h / (NH / NKV));
        let dot = 0;
        for (let d = 0; d < HD; d++) dot += q[((b * T + i) * NH + h) * HD + d] * kk[((b * T + i) * NKV + g) * HD + d];
        lse[(b * NH + h) * T + i] = dot / Math.sqrt(HD) - Math.log(P[((b * NH + h) * T + i) * T + i]);
      }
  return lse;
}

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
        it(name, async () => {
          const { B, T, NH, NKV, HD } = shape;
          const nq = B * T * NH * HD;
          const nkv = B * T * NKV * HD;
          const q = randomArray(nq, 1, -2, 2);
          const kk = randomArray(nkv, 2, -2, 2);
          const v = randomArray(nkv, 3);
          const dout = randomArray(nq, 4);
          const init = { dq: randomArray(nq, 5), dk: randomArray(nkv, 6), dv: randomArray(nkv, 7) };
          const tq = gpuTensor(gpu, 'q', [B, T, NH, HD], q);
          const tk = gpuTensor(gpu, 'k', [B, T, NKV, HD], kk);
          const tv = gpuTensor(gpu, 'v', [B, T, NKV, HD], v);
          const out = createTensor(gpu.device, 'out', [B, T, NH, HD]);
          const lse = createTensor(gpu.device, 'lse', [B, NH, T]);
          const delta = createTensor(gpu.device, 'delta', [B, NH, T]);
          const dq = gpuTensor(gpu, 'dq', [B, T, NH, HD], init.dq);
          const dk = gpuTensor(gpu, 'dk', [B, T, NKV, HD], init.dk);
          const dv = gpuTensor(gpu, 'dv', [B, T, NKV, HD], init.dv);
          const calls = [
            ...attentionForward(k, out, lse, tq, tk, tv, shape),
            ...attentionBackward(k, dq, dk, dv, delta, gpuTensor(gpu, 'dout', [B, T, NH, HD], dout), out, tq, tk, tv, lse, shape),
          ];
          const [gOut, gLse, gDq, gDk, gDv] = await runAndRead(gpu, calls, out, lse, dq, dk, dv);
          const fwd = attentionForwardCpu(q, kk, v, shape);
          const bwd = attentionBackwardCpu(dout, q, kk, v, shape);
          expect(maxRelErr(gOut, fwd.out)).toBeLessThan(2e-5);
          expect(maxRelErr(gLse, lseFromCpu(q, kk, fwd.P, shape))).toBeLessThan(2e-5);
          expect(maxRelErr(gDq, addArrays(init.dq, bwd.dq))).toBeLessThan(5e-5);
          expect(maxRelErr(gDk, addArrays(init.dk, bwd.dk))).toBeLessThan(5e-5);
          expect(maxRelErr(gDv, addArrays(init.dv, bwd.dv))).toBeLessThan(5e-5);
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
