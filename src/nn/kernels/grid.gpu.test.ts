// Grids over 65535 workgroups are folded into 2-D dispatches; the kernels unfold them. Checked here with
// enough rows / elements to fold under the software-adapter workgroup sizes.

import { describe, expect, it } from 'vitest';
import { createTensor } from '../../gpu/tensor';
import { crossentropyCpu, rmsnormForwardCpu } from './cpu';
import { crossentropyBackward, crossentropyForward, fill, kernelLib, rmsnormForward, SOFTWARE_TUNING } from './index';
import { grid1D } from './lib';
import { gpuTensor, maxRelErr, randomArray, randomInts, runAndRead } from './test-utils';
import { testGpu } from '../../testing/gpu';

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

  it('row kernels (rmsnorm, cross-entropy) reach the last row of a folded grid', async () => {
    const [rows, C, V] = [65535 + 77, 3, 5];
    const inp = randomArray(rows * C, 1);
    const w = randomArray(C, 2, 0.5, 1.5);
    const out = createTensor(gpu.device, 'out', [rows, C]);
    const rstd = createTensor(gpu.device, 'rstd', [rows]);
    const logits = randomArray(rows * V, 3, -2, 2);
    const ids = randomInts(rows, 4, V);
    const mask = new Int32Array(rows).fill(1);
    const losses = createTensor(gpu.device, 'losses', [1, rows]);
    const lse = createTensor(gpu.device, 'lse', [1, rows]);
    const stats = createTensor(gpu.device, 'stats', [2]);
    const tLogits = gpuTensor(gpu, 'logits', [1, rows, V], logits);
    const tIds = gpuTensor(gpu, 'ids', [1, rows], ids, 'i32');
    const tMask = gpuTensor(gpu, 'mask', [1, rows], mask, 'i32');
    const dlogits = createTensor(gpu.device, 'dlogits', [1, rows, V]);
    const calls = [
      ...rmsnormForward(k, out, rstd, gpuTensor(gpu, 'inp', [rows, C], inp), gpuTensor(gpu, 'w', [C], w), 1e-6),
      ...crossentropyForward(k, losses, lse, stats, tLogits, tIds, tMask, rows),
      ...crossentropyBackward(k, dlogits, tLogits, lse, stats, tIds, tMask, rows),
    ];
    const [gOut, gLosses, gD] = await runAndRead(gpu, calls, out, losses, dlogits);
    expect(maxRelErr(gOut, rmsnormForwardCpu(inp, w, rows, C, 1e-6).out)).toBeLessThan(2e-5);
    const ce = crossentropyCpu(logits, ids, mask, 1, rows, V);
    expect(maxRelErr(gLosses, ce.losses)).toBeLessThan(2e-5);
    expect(maxRelErr(gD, ce.dlogits)).toBeLessThan(1e-8);
  });
});
