// Cross-entropy with the loss mask, AdamW and global-norm clipping on the GPU against the CPU references.

import { describe, expect, it } from 'vitest';
import { run } from '../../gpu/kernel';
import { createTensor, upload } from '../../gpu/tensor';
import { adamwCpu, crossentropyCpu, gradNormCpu } from './cpu';
import { AdamWUpdate, crossentropyBackward, crossentropyForward, GlobalGradNorm, kernelLib } from './index';
import { gpuTensor, maxRelErr, randomArray, randomInts, runAndRead, TUNINGS } from './test-utils';
import { testGpu } from '../../testing/gpu';

const gpu = await testGpu();

for (const [tuningName, tuning] of TUNINGS) {
  describe(tuningName, () => {
    const k = kernelLib(gpu, tuning);

    describe('cross-entropy', () => {
      it('per-position losses, the masked mean, and dlogits (overwritten) over a vocabulary wider than a workgroup', async () => {
        const [B, T, V] = [3, 9, 611];
        const logits = randomArray(B * T * V, 1, -6, 6);
        const ids = randomInts(B * T, 2, V);
        // Prompt tokens masked out, a fully-masked sequence, and a target at the very end of a row.
        const mask = Int32Array.from([0, 0, 0, 1, 1, 1, 0, 1, 1, /**/ 0, 0, 0, 0, 0, 0, 0, 0, 0, /**/ 1, 1, 1, 1, 1, 1, 1, 1, 1]);
        const tLogits = gpuTensor(gpu, 'logits', [B, T, V], logits);
        const tIds = gpuTensor(gpu, 'ids', [B, T], ids, 'i32');
        const tMask = gpuTensor(gpu, 'mask', [B, T], mask, 'i32');
        const losses = createTensor(gpu.device, 'losses', [B, T]);
        const lse = createTensor(gpu.device, 'lse', [B, T]);
        const stats = createTensor(gpu.device, 'stats', [2]);
        const dlogits = gpuTensor(gpu, 'dlogits', [B, T, V], randomArray(B * T * V, 3)); // stale values must be overwritten
        const calls = [...crossentropyForward(k, losses, lse, stats, tLogits, tIds, tMask, T), ...crossentropyBackward(k, dlogits, tLogits, lse, stats, tIds, tMask, T)];
        const [gLosses, gStats, gD] = await runAndRead(gpu, calls, losses, stats, dlogits);
        const want = crossentropyCpu(logits, ids, mask, B, T, V);
        expect(want.count).toBe(13);
        expect(gStats[1]).toBe(13);
        expect(maxRelErr(gLosses, want.losses)).toBeLessThan(1e-5);
        expect(Math.abs(gStats[0] - want.loss) / want.loss).toBeLessThan(1e-5);
        expect(maxRelErr(gD, want.dlogits)).toBeLessThan(1e-6);
      });

      it('nothing counted: loss 0 and zero gradients, no NaN', async () => {
        const [B, T, V] = [1, 4, 7];
        const tLogits = gpuTensor(gpu, 'logits', [B, T, V], randomArray(B * T * V, 4));
        const tIds = gpuTensor(gpu, 'ids', [B, T], randomInts(B * T, 5, V), 'i32');
        const tMask = gpuTensor(gpu, 'mask', [B, T], new Int32Array(B * T), 'i32');
        const losses = createTensor(gpu.device, 'losses', [B, T]);
        const lse = createTensor(gpu.device, 'lse', [B, T]);
        const stats = createTensor(gpu.device, 'stats', [2]);
        const dlogits = createTensor(gpu.device, 'dlogits', [B, T, V]);
        const calls = [...crossentropyForward(k, losses, lse, stats, tLogits, tIds, tMask, T), ...crossentropyBackward(k, dlogits, tLogits, lse, stats, tIds, tMask, T)];
        const [gStats, gD] = await runAndRead(gpu, calls, stats, dlogits);
        expect(Array.from(gStats)).toEqual([0, 0]);
        expect(gD.every((x) => x === 0)).toBe(true);
      });
    });

    describe('optimizer', () => {
      it('AdamW over several steps, the first at learning rate 0 (moments still move), with weight decay', async () => {
        const n = 1037;
        const hyper = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
        let p = Float64Array.from(randomArray(n, 6));
        let m = new Float64Array(n);
        let v = new Float64Array(n);
        const param = gpuTensor(gpu, 'param', [n], Float32Array.from(p));
        const tm = createTensor(gpu.device, 'm', [n]);
        const tv = createTensor(gpu.device, 'v', [n]);
        const grad = createTensor(gpu.device, 'grad', [n]);
        const update = new AdamWUpdate(k, param, tm, tv, grad, hyper);
        for (let step = 1; step <= 4; step++) {
          const lr = 1e-3 * Math.min(1, (step - 1) / 2);
          const g = randomArray(n, 100 + step, -0.1, 0.1);
          upload(gpu.device, grad, g);
          update.setStep(step, lr);
          run(gpu.device, update.calls);
          const want = adamwCpu(p, m, v, g, step, { lr, ...hyper });
          [p, m, v] = [want.param, want.m, want.v];
        }
        const [gp, gm, gv] = await runAndRead(gpu, [], param, tm, tv);
        expect(maxRelErr(gp, p)).toBeLessThan(1e-6);
        expect(maxRelErr(gm, m)).toBeLessThan(1e-6);
        expect(maxRelErr(gv, v)).toBeLessThan(1e-6);
      });

      for (const [name, maxNorm] of [
        ['clips when the norm exceeds max_norm', 1.0],
        ['leaves gradients alone under max_norm', 1e3],
      ] as [string, number][]) {
        it(`global gradient norm over many tensors ${name}`, async () => {
          const sizes = [5, 4096 * 3 + 7, 300, 1];
          const data = sizes.map((n, i) => randomArray(n, 200 + i));
          const grads = data.map((d, i) => gpuTensor(gpu, `g${i}`, [d.length], d));
          const norm = new GlobalGradNorm(k, grads, maxNorm);
          run(gpu.device, norm.normCalls);
          const [pre] = await runAndRead(gpu, [], norm.norm);
          const [post, ...clipped] = await runAndRead(gpu, norm.clipCalls, norm.norm, ...grads);
          const want = gradNormCpu(data, maxNorm);
          expect(Math.abs(pre[0] - want.norm) / want.norm).toBeLessThan(1e-6);
          expect(Math.abs(pre[1] - want.clip)).toBeLessThan(1e-6);
          expect(post[1]).toBe(pre[1]);
          clipped.forEach((g, i) => expect(maxRelErr(g, Float64Array.from(data[i], (x) => x * want.clip))).toBeLessThan(1e-6));
          if (maxNorm > want.norm) expect(clipped[1]).toEqual(data[1]);
        });
      }
    });
  });
}
