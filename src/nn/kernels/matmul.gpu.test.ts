// The matmul family on the GPU against the CPU references, at ragged sizes (not multiples of the 64×64 tile).

import { describe, expect, it } from 'vitest';
import { createTensor } from '../../gpu/tensor';
import { linearBackwardCpu, linearForwardCpu, loraBackwardCpu, loraForwardCpu, matmulCpu } from './cpu';
import { kernelLib, linearBackward, linearForward, loraBackward, loraForward, matmul } from './index';
import { addArrays, gpuTensor, maxRelErr, randomArray, relL2, runAndRead, TUNINGS } from './test-utils';
import { testGpu } from '../../testing/gpu';

const [N, IC, OC, r, scale] = [37, 70, 131, 5, 4];
const TOL = 2e-5;

const gpu = await testGpu();

for (const [tuningName, tuning] of TUNINGS) {
  describe(tuningName, () => {
    const k = kernelLib(gpu, tuning);

    describe('matmul family (f32)', () => {
      const inp = randomArray(N * IC, 1);
      const w = randomArray(OC * IC, 2);
      const bias = randomArray(OC, 3);
      const dout = randomArray(N * OC, 4);

      it('matmul: every transpose combination, overwrite and accumulate with alpha', async () => {
        const [M, Nn, K] = [67, 9, 130];
        const a = randomArray(M * K, 5);
        const b = randomArray(K * Nn, 6);
        const c0 = randomArray(M * Nn, 7);
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const c = gpuTensor(gpu, 'c', [M, Nn], c0);
            const calls = [matmul(k, 't', { c, a: gpuTensor(gpu, 'a', [M * K], a), b: gpuTensor(gpu, 'b', [K * Nn], b), M, N: Nn, K, transA, transB, accumulate: true, alpha: 0.5 })];
            const [got] = await runAndRead(gpu, calls, c);
            // The same stored data read with the other layout is a different matrix, so each combination checks its own.
            expect(maxRelErr(got, addArrays(c0, matmulCpu(a, b, M, Nn, K, transA, transB, 0.5)))).toBeLessThan(TOL);
          }
        }
      });

      it('linearForward with and without bias', async () => {
        const out = createTensor(gpu.device, 'out', [N, OC]);
        const outNoBias = createTensor(gpu.device, 'outNoBias', [N, OC]);
        const tInp = gpuTensor(gpu, 'inp', [N, IC], inp);
        const tW = gpuTensor(gpu, 'w', [OC, IC], w);
        const calls = [...linearForward(k, out, tInp, tW, gpuTensor(gpu, 'bias', [OC], bias)), ...linearForward(k, outNoBias, tInp, tW, null)];
        const [got, gotNoBias] = await runAndRead(gpu, calls, out, outNoBias);
        expect(maxRelErr(got, linearForwardCpu(inp, w, bias, N, IC, OC))).toBeLessThan(TOL);
        expect(maxRelErr(gotNoBias, linearForwardCpu(inp, w, null, N, IC, OC))).toBeLessThan(TOL);
      });

      it('linearBackward accumulates dinp, dweight, dbias', async () => {
        const init = { dinp: randomArray(N * IC, 8), dweight: randomArray(OC * IC, 9), dbias: randomArray(OC, 10) };
        const dinp = gpuTensor(gpu, 'dinp', [N, IC], init.dinp);
        const dweight = gpuTensor(gpu, 'dweight', [OC, IC], init.dweight);
        const dbias = gpuTensor(gpu, 'dbias', [OC], init.dbias);
        const calls = linearBackward(k, dinp, dweight, dbias, gpuTensor(gpu, 'dout', [N, OC], dout), gpuTensor(gpu, 'inp', [N, IC], inp), gpuTensor(gpu, 'w', [OC, IC], w));
        const [gi, gw, gb] = await runAndRead(gpu, calls, dinp, dweight, dbias);
        const want = linearBackwardCpu(dout, inp, w, N, IC, OC);
        expect(maxRelErr(gi, addArrays(init.dinp, want.dinp))).toBeLessThan(TOL);
        expect(maxRelErr(gw, addArrays(init.dweight, want.dweight))).toBeLessThan(TOL);
        expect(maxRelErr(gb, addArrays(init.dbias, want.dbias))).toBeLessThan(TOL);
      });

      it('loraForward adds scale·(x·Aᵀ)·Bᵀ to the output and keeps h', async () => {
        const A = randomArray(r * IC, 11);
        const B = randomArray(OC * r, 12);
        const base = randomArray(N * OC, 13);
        const out = gpuTensor(gpu, 'out', [N, OC], base);
        const h = createTensor(gpu.device, 'h', [N, r]);
        const calls = loraForward(k, out, h, gpuTensor(gpu, 'inp', [N, IC], inp), gpuTensor(gpu, 'A', [r, IC], A), gpuTensor(gpu, 'B', [OC, r], B), scale);
        const [gotOut, gotH] = await runAndRead(gpu, calls, out, h);
        const want = loraForwardCpu(inp, A, B, N, IC, OC, r, scale);
        expect(maxRelErr(gotH, want.h)).toBeLessThan(TOL);
        expect(maxRelErr(gotOut, addArrays(base, want.out))).toBeLessThan(TOL);
      });

      it('loraBackward: dA, dB, dinp accumulate; dh overwrites', async () => {
        const A = randomArray(r * IC, 14);
        const B = randomArray(OC * r, 15);
        const init = { dA: randomArray(r * IC, 16), dB: randomArray(OC * r, 17), dinp: randomArray(N * IC, 18) };
        const dA = gpuTensor(gpu, 'dA', [r, IC], init.dA);
        const dB = gpuTensor(gpu, 'dB', [OC, r], init.dB);
        const dinp = gpuTensor(gpu, 'dinp', [N, IC], init.dinp);
        const dh = gpuTensor(gpu, 'dh', [N, r], randomArray(N * r, 19));
        const want = loraBackwardCpu(dout, inp, A, B, N, IC, OC, r, scale);
        const h = gpuTensor(gpu, 'h', [N, r], Float32Array.from(loraForwardCpu(inp, A, B, N, IC, OC, r, scale).h));
        const calls = loraBackward(k, dinp, dA, dB, dh, gpuTensor(gpu, 'dout', [N, OC], dout), gpuTensor(gpu, 'inp', [N, IC], inp), h, gpuTensor(gpu, 'A', [r, IC], A), gpuTensor(gpu, 'B', [OC, r], B), scale);
        const [gA, gB, gi, gh] = await runAndRead(gpu, calls, dA, dB, dinp, dh);
        expect(maxRelErr(gh, want.dh)).toBeLessThan(TOL);
        // dA and dinp come through the f32 dh (two chained sums of ~100 terms): compare as the fixtures do, by L2.
        expect(relL2(gA, addArrays(init.dA, want.dA))).toBeLessThan(1e-5);
        expect(relL2(gB, addArrays(init.dB, want.dB))).toBeLessThan(1e-5);
        expect(relL2(gi, addArrays(init.dinp, want.dinp))).toBeLessThan(1e-5);
      });

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
