// KernelLib reading f16 weights (gpu-f16 tier: Dawn on lavapipe, which has shader-f16; skipped, with the reason,
// on an adapter without it). The weights are f16 bits; the CPU references use the values those bits hold exactly,
// so only f32 rounding differs and the f32 tolerance applies.

import { beforeAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../../gpu/device';
import { createTensor } from '../../gpu/tensor';
import { f16TestGpu } from '../../testing/lavapipe';
import { embeddingForwardCpu, linearBackwardCpu, linearForwardCpu } from './cpu';
import { embeddingForward, kernelLib, type KernelLib, linearBackward, linearForward } from './index';
import { gpuTensor, maxRelErr, randomArray, randomInts, runAndRead, toHalf, TUNINGS } from './test-utils';

const [N, IC, OC] = [37, 70, 131]; // ragged: not multiples of the 64×64 tile
const [B, T, C, V] = [2, 7, 45, 19];
const TOL = 2e-5;

let gpu: Gpu;
let skip: string | null;
beforeAll(async () => {
  ({ gpu, skip } = await f16TestGpu());
});

for (const [tuningName, tuning] of TUNINGS) {
  describe(tuningName, () => {
    let k: KernelLib;
    beforeAll(() => {
      if (!skip) k = kernelLib(gpu, tuning);
    });

    it('linearForward and linearBackward read f16 weights and accumulate in f32', async (ctx) => {
      if (skip) return ctx.skip(skip);
      const inp = randomArray(N * IC, 21);
      const half = toHalf(randomArray(OC * IC, 22));
      const bias = randomArray(OC, 23);
      const dout = randomArray(N * OC, 24);
      const w16 = gpuTensor(gpu, 'w16', [OC, IC], half.bits, 'f16'); // (OC, IC)
      const out = createTensor(gpu.device, 'out', [N, OC]); // (N, OC)
      const dinp = createTensor(gpu.device, 'dinp', [N, IC]); // (N, IC)
      const calls = [
        ...linearForward(k, out, gpuTensor(gpu, 'inp', [N, IC], inp), w16, gpuTensor(gpu, 'bias', [OC], bias)),
        ...linearBackward(k, dinp, null, null, gpuTensor(gpu, 'dout', [N, OC], dout), gpuTensor(gpu, 'inp2', [N, IC], inp), w16),
      ];
      const [gotOut, gotDinp] = await runAndRead(gpu, calls, out, dinp);
      expect(maxRelErr(gotOut, linearForwardCpu(inp, half.values, bias, N, IC, OC))).toBeLessThan(TOL);
      expect(maxRelErr(gotDinp, linearBackwardCpu(dout, inp, half.values, N, IC, OC).dinp)).toBeLessThan(TOL);
    });

    it('embeddingForward gathers rows of an f16 wte exactly', async (ctx) => {
      if (skip) return ctx.skip(skip);
      const ids = randomInts(B * T, 3, V);
      const half = toHalf(randomArray(V * C, 4));
      const out = createTensor(gpu.device, 'out', [B, T, C]); // (B, T, C)
      const [got] = await runAndRead(gpu, embeddingForward(k, out, gpuTensor(gpu, 'ids', [B, T], ids, 'i32'), gpuTensor(gpu, 'wte', [V, C], half.bits, 'f16')), out);
      expect(maxRelErr(got, embeddingForwardCpu(ids, half.values, V, C))).toBe(0);
    });
  });
}
