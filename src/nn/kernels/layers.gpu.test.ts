// Embedding, RMSNorm, RoPE, SwiGLU, residual and buffer utilities on the GPU against the CPU references,
// forward and backward, at odd sizes.

import { describe, expect, it } from 'vitest';
import { createTensor } from '../../gpu/tensor';
import { embeddingForwardCpu, rmsnormBackwardCpu, rmsnormForwardCpu, ropeBackwardCpu, ropeForwardCpu, swigluBackwardCpu, swigluForwardCpu } from './cpu';
import { accumulate, copy, embeddingForward, fill, kernelLib, residualBackward, residualForward, rmsnormBackward, rmsnormForward, ropeBackward, ropeForward, ropeTables, swigluBackward, swigluForward } from './index';
import { addArrays, gpuTensor, maxRelErr, randomArray, randomInts, runAndRead, TUNINGS } from './test-utils';
import { testGpu } from '../../testing/gpu';

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
        const wte = randomArray(V * C, 2);
        const out = createTensor(gpu.device, 'out', [B, T, C]);
        const [got] = await runAndRead(gpu, embeddingForward(k, out, gpuTensor(gpu, 'ids', [B, T], ids, 'i32'), gpuTensor(gpu, 'wte', [V, C], wte)), out);
        expect(maxRelErr(got, embeddingForwardCpu(ids, wte, V, C))).toBe(0);
        expect(got.slice(3 * C, 4 * C).every((x) => x === 0)).toBe(true);
      });
      // embeddingForward with an f16 wte: weights.f16.gpu.test.ts (the gpu-f16 tier, on an adapter with shader-f16).
    });

    describe('rmsnorm', () => {
      for (const [name, rows, cols] of [
        ['over the hidden size', B * T, C],
        ['per head (Qwen3 q/k norm: rows B·T·NH, C = head_dim)', B * T * NH, HD],
        ['over a row wider than the workgroup', 3, 600],
      ] as [string, number, number][]) {
        it(`forward and backward ${name}`, async () => {
          const eps = 1e-6;
          const inp = randomArray(rows * cols, 5, -2, 2);
          const w = randomArray(cols, 6, 0.5, 1.5);
          const dout = randomArray(rows * cols, 7);
          const init = { dinp: randomArray(rows * cols, 8), dweight: randomArray(cols, 9) };
          const tInp = gpuTensor(gpu, 'inp', [rows, cols], inp);
          const tW = gpuTensor(gpu, 'w', [cols], w);
          const out = createTensor(gpu.device, 'out', [rows, cols]);
          const rstd = createTensor(gpu.device, 'rstd', [rows]);
          const dinp = gpuTensor(gpu, 'dinp', [rows, cols], init.dinp);
          const dweight = gpuTensor(gpu, 'dweight', [cols], init.dweight);
          const calls = [...rmsnormForward(k, out, rstd, tInp, tW, eps), ...rmsnormBackward(k, dinp, dweight, gpuTensor(gpu, 'dout', [rows, cols], dout), tInp, tW, rstd)];
          const [gOut, gRstd, gDinp, gDw] = await runAndRead(gpu, calls, out, rstd, dinp, dweight);
          const fwd = rmsnormForwardCpu(inp, w, rows, cols, eps);
          const bwd = rmsnormBackwardCpu(dout, inp, w, rows, cols, eps);
          expect(maxRelErr(gOut, fwd.out)).toBeLessThan(TOL);
          expect(maxRelErr(gRstd, fwd.rstd)).toBeLessThan(TOL);
          expect(maxRelErr(gDinp, addArrays(init.dinp, bwd.dinp))).toBeLessThan(TOL);
          expect(maxRelErr(gDw, addArrays(init.dweight, bwd.dweight))).toBeLessThan(TOL);
        });
      }
    });

    describe('rope', () => {
      it('forward and backward, rotate-half layout, llama3-scaled tables', async () => {
        const rope = { type: 'llama3' as const, theta: 500000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 };
        const { cos, sin } = ropeTables(rope, HD, T);
        const x = randomArray(B * T * NH * HD, 10);
        const dout = randomArray(x.length, 11);
        const init = randomArray(x.length, 12);
        const tCos = gpuTensor(gpu, 'cos', [T, HD], cos);
        const tSin = gpuTensor(gpu, 'sin', [T, HD], sin);
        const out = createTensor(gpu.device, 'out', [B, T, NH, HD]);
        const dinp = gpuTensor(gpu, 'dinp', [B, T, NH, HD], init);
        const calls = [...ropeForward(k, out, gpuTensor(gpu, 'x', [B, T, NH, HD], x), tCos, tSin, T, NH), ...ropeBackward(k, dinp, gpuTensor(gpu, 'dout', [B, T, NH, HD], dout), tCos, tSin, T, NH)];
        const [gOut, gDinp] = await runAndRead(gpu, calls, out, dinp);
        expect(maxRelErr(gOut, ropeForwardCpu(x, cos, sin, T, NH, HD))).toBeLessThan(TOL);
        expect(maxRelErr(gDinp, addArrays(init, ropeBackwardCpu(dout, cos, sin, T, NH, HD)))).toBeLessThan(TOL);
      });
    });

    describe('elementwise', () => {
      const n = B * T * I;
      it('swiglu forward and backward', async () => {
        const gate = randomArray(n, 13, -4, 4);
        const up = randomArray(n, 14);
        const dout = randomArray(n, 15);
        const init = { dgate: randomArray(n, 16), dup: randomArray(n, 17) };
        const tGate = gpuTensor(gpu, 'gate', [n], gate);
        const tUp = gpuTensor(gpu, 'up', [n], up);
        const out = createTensor(gpu.device, 'out', [n]);
        const dgate = gpuTensor(gpu, 'dgate', [n], init.dgate);
        const dup = gpuTensor(gpu, 'dup', [n], init.dup);
        const calls = [...swigluForward(k, out, tGate, tUp), ...swigluBackward(k, dgate, dup, gpuTensor(gpu, 'dout', [n], dout), tGate, tUp)];
        const [gOut, gDgate, gDup] = await runAndRead(gpu, calls, out, dgate, dup);
        const bwd = swigluBackwardCpu(dout, gate, up);
        expect(maxRelErr(gOut, swigluForwardCpu(gate, up))).toBeLessThan(TOL);
        expect(maxRelErr(gDgate, addArrays(init.dgate, bwd.dgate))).toBeLessThan(TOL);
        expect(maxRelErr(gDup, addArrays(init.dup, bwd.dup))).toBeLessThan(TOL);
      });

      it('residual forward / backward, accumulate, fill, copy', async () => {
        const [a, b, dout, da0, db0] = [18, 19, 20, 21, 22].map((s) => randomArray(n, s));
        const out = createTensor(gpu.device, 'out', [n]);
        const da = gpuTensor(gpu, 'da', [n], da0);
        const db = gpuTensor(gpu, 'db', [n], db0);
        const acc = gpuTensor(gpu, 'acc', [n], a);
        const filled = gpuTensor(gpu, 'filled', [n], b);
        const copied = createTensor(gpu.device, 'copied', [n]);
        const tA = gpuTensor(gpu, 'a', [n], a);
        const tB = gpuTensor(gpu, 'b', [n], b);
        const calls = [
          ...residualForward(k, out, tA, tB),
          ...residualBackward(k, da, db, gpuTensor(gpu, 'dout', [n], dout)),
          ...accumulate(k, acc, tB),
          ...fill(k, filled, 0.25),
          ...copy(k, copied, tA),
        ];
        const [gOut, gDa, gDb, gAcc, gFill, gCopy] = await runAndRead(gpu, calls, out, da, db, acc, filled, copied);
        expect(maxRelErr(gOut, addArrays(a, b))).toBeLessThan(1e-7);
        expect(maxRelErr(gDa, addArrays(da0, dout))).toBeLessThan(1e-7);
        expect(maxRelErr(gDb, addArrays(db0, dout))).toBeLessThan(1e-7);
        expect(maxRelErr(gAcc, addArrays(a, b))).toBeLessThan(1e-7);
        expect(gFill.every((x) => x === 0.25)).toBe(true);
        expect(gCopy).toEqual(a);
      });
    });
  });
}
