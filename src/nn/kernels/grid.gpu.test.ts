// Grids over 65535 workgroups are folded into 2-D dispatches; the kernels unfold them. Checked here with
// enough rows / elements to fold under the software-adapter workgroup sizes.

import { describe, expect, it } from 'vitest';
import { createTensor } from '../../gpu/tensor';
import { checkKernel, randomInts, runAndRead } from '../../testing/kernels';
import { testGpu } from '../../testing/gpu';
import { crossentropyBackward as crossentropyBackwardCpu, crossentropyForward as crossentropyForwardCpu } from './crossentropy.cpu';
import { crossentropyBackward, crossentropyForward, fill, kernelLib, rmsnormForward, SOFTWARE_TUNING } from './index';
import { grid1D } from './lib';
import { rmsnormForward as rmsnormForwardCpu } from './rmsnorm.cpu';

const gpu = await testGpu();
// Small reduction workgroups: 65k of them stay quick on a software adapter.
const k = kernelLib(gpu, { ...SOFTWARE_TUNING, reductionWorkgroup: 4 });

describe('folded grids', () => {
  it('grid1D folds past 65535 workgroups and covers every item', () => {
    expect(grid1D(65535 * 64, 64)).toEqual([65535, 1]);
    const [x, y = 1] = grid1D(65535 * 64 + 1, 64);
    expect(y).toBe(2);
    expect(x * y * 64).toBeGreaterThanOrEqual(65535 * 64 + 1);
  });

  it('elementwise kernels reach the last element of a folded grid', async () => {
    const n = 65535 * SOFTWARE_TUNING.elementwiseWorkgroup + 1000;
    const t = createTensor(gpu.device, 't', [n]);
    const [got] = await runAndRead(gpu, fill(k, t, 3), t);
    expect(got[0]).toBe(3);
    expect(got[n - 1]).toBe(3);
    expect(got.every((v) => v === 3)).toBe(true);
  });

  it('row kernels (rmsnorm, cross-entropy) reach the last row of a folded grid', () => {
    const [rows, C, V] = [65535 + 77, 3, 5];
    return checkKernel(gpu, {
      shapes: {
        out: [rows, C], rstd: [rows], losses: [1, rows], lse: [1, rows], stats: [2], dlogits: [1, rows, V],
        inp: [rows, C], w: { shape: [C], range: [0.5, 1.5] }, logits: { shape: [1, rows, V], range: [-2, 2] },
        ids: { shape: [1, rows], data: randomInts(rows, 4, V) }, mask: { shape: [1, rows], data: new Int32Array(rows).fill(1) },
      },
      gpu: (t) => [
        ...rmsnormForward(k, t.out, t.rstd, t.inp, t.w, 1e-6),
        ...crossentropyForward(k, t.losses, t.lse, t.stats, t.logits, t.ids, t.mask, rows),
        ...crossentropyBackward(k, t.dlogits, t.logits, t.lse, t.stats, t.ids, t.mask, rows),
      ],
      ref: (x) => {
        rmsnormForwardCpu(x.out, x.rstd, x.inp, x.w, rows, C, 1e-6);
        const { count } = crossentropyForwardCpu(x.losses, x.lse, x.logits, x.ids, x.mask, rows, V);
        crossentropyBackwardCpu(x.dlogits, x.logits, x.lse, x.ids, x.mask, rows, V, count);
      },
      tolerance: { out: 2e-5, losses: 2e-5, dlogits: 1e-8 },
    });
  });
});
