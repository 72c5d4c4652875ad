// Cross-entropy with the loss mask, AdamW and global-norm clipping on the GPU against the CPU references.

import { describe, expect, it } from 'vitest';
import { run } from '../../gpu/kernel';
import { createTensor, upload } from '../../gpu/tensor';
import { maxScaledAbsError } from '../reference/compare';
import { checkKernel, gpuTensor, randomArray, randomInts, runAndRead, TUNINGS } from '../../testing/kernels';
import { testGpu } from '../../testing/gpu';
import { crossentropyBackward as crossentropyBackwardCpu, crossentropyForward as crossentropyForwardCpu } from './crossentropy.cpu';
import { AdamWUpdate, crossentropyBackward, crossentropyForward, GlobalGradNorm, kernelLib } from './index';
import { adamw, gradNorm } from './optimizer.cpu';

const gpu = await testGpu();

/** The kernels' stats (2) = [mean loss, count] from the CPU cross-entropy, and dlogits. */
function crossentropyCpu(x: Record<'losses' | 'lse' | 'stats' | 'dlogits' | 'logits' | 'ids' | 'mask', Float64Array>, T: number, V: number): void {
  const { loss, count } = crossentropyForwardCpu(x.losses, x.lse, x.logits, x.ids, x.mask, T, V);
  x.stats.set([loss, count]);
  crossentropyBackwardCpu(x.dlogits, x.logits, x.lse, x.ids, x.mask, T, V, count);
}

for (const [tuningName, tuning] of TUNINGS) {
  describe(tuningName, () => {
    const k = kernelLib(gpu, tuning);

    describe('cross-entropy', () => {
      it('per-position losses, the masked mean, and dlogits (overwritten) over a vocabulary wider than a workgroup', async () => {
        const [B, T, V] = [3, 9, 611];
        // Prompt tokens masked out, a fully-masked sequence, and a target at the very end of a row.
        const mask = Int32Array.from([0, 0, 0, 1, 1, 1, 0, 1, 1, /**/ 0, 0, 0, 0, 0, 0, 0, 0, 0, /**/ 1, 1, 1, 1, 1, 1, 1, 1, 1]);
        const { got, want } = await checkKernel(gpu, {
          shapes: {
            losses: [B, T], lse: [B, T], stats: [2], dlogits: [B, T, V], // stale values in dlogits must be overwritten
            logits: { shape: [B, T, V], range: [-6, 6] }, ids: { shape: [B, T], data: randomInts(B * T, 2, V) }, mask: { shape: [B, T], data: mask },
          },
          gpu: (t) => [...crossentropyForward(k, t.losses, t.lse, t.stats, t.logits, t.ids, t.mask, T), ...crossentropyBackward(k, t.dlogits, t.logits, t.lse, t.stats, t.ids, t.mask, T)],
          ref: (x) => crossentropyCpu(x, T, V),
          tolerance: { losses: 1e-5, stats: 1e-5, dlogits: 1e-6 },
        });
        expect(want.stats[1]).toBe(13);
        expect(got.stats[1]).toBe(13);
        expect(Math.abs(got.stats[0] - want.stats[0]) / want.stats[0]).toBeLessThan(1e-5);
      });

      it('nothing counted: loss 0 and zero gradients, no NaN', async () => {
        const [B, T, V] = [1, 4, 7];
        const { got } = await checkKernel(gpu, {
          shapes: {
            losses: [B, T], lse: [B, T], stats: [2], dlogits: [B, T, V],
            logits: [B, T, V], ids: { shape: [B, T], data: randomInts(B * T, 5, V) }, mask: { shape: [B, T], data: new Int32Array(B * T) },
          },
          gpu: (t) => [...crossentropyForward(k, t.losses, t.lse, t.stats, t.logits, t.ids, t.mask, T), ...crossentropyBackward(k, t.dlogits, t.logits, t.lse, t.stats, t.ids, t.mask, T)],
          ref: (x) => crossentropyCpu(x, T, V),
          tolerance: { stats: 0, dlogits: 0 },
        });
        expect(Array.from(got.stats)).toEqual([0, 0]);
        expect(got.dlogits.every((x) => x === 0)).toBe(true);
      });
    });

    describe('optimizer', () => {
      it('AdamW over several steps, the first at learning rate 0 (moments still move), with weight decay', async () => {
        const n = 1037;
        const hyper = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 };
        const [p, m, v] = [Float64Array.from(randomArray(n, 6)), new Float64Array(n), new Float64Array(n)];
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
          adamw(p, m, v, Float64Array.from(g), step, lr, hyper);
        }
        const [gp, gm, gv] = await runAndRead(gpu, [], param, tm, tv);
        expect(maxScaledAbsError(gp, p)).toBeLessThan(1e-6);
        expect(maxScaledAbsError(gm, m)).toBeLessThan(1e-6);
        expect(maxScaledAbsError(gv, v)).toBeLessThan(1e-6);
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
          const want = gradNorm(data, maxNorm);
          expect(Math.abs(pre[0] - want.norm) / want.norm).toBeLessThan(1e-6);
          expect(Math.abs(pre[1] - want.clip)).toBeLessThan(1e-6);
          expect(post[1]).toBe(pre[1]);
          clipped.forEach((g, i) => expect(maxScaledAbsError(g, Float64Array.from(data[i], (x) => x * want.clip))).toBeLessThan(1e-6));
          if (maxNorm > want.norm) expect(clipped[1]).toEqual(data[1]);
        });
      }
    });
  });
}
