// Kernels reading f16 weights (gpu-f16 tier: Dawn on lavapipe, which has shader-f16; skipped, with the reason,
// on an adapter without it). The weights are f16 bits; the CPU references use the values those bits hold exactly,
// so only f32 rounding differs and the f32 tolerance applies.

import { beforeAll, describe, it } from 'vitest';
import type { Gpu } from '../../gpu/device';
import { checkKernel, randomInts, TUNINGS } from '../../testing/kernels';
import { f16TestGpu } from '../../testing/lavapipe';
import { embeddingForward as embeddingForwardCpu } from './embedding.cpu';
import { embeddingForward, kernelLib, linearBackward, linearForward, type KernelLib } from './index';
import { linearBackward as linearBackwardCpu, linearForward as linearForwardCpu } from './matmul.cpu';

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
      await checkKernel(gpu, {
        shapes: { out: [N, OC], dinp: [N, IC], inp: [N, IC], w16: { shape: [OC, IC], f16: true }, bias: [OC], dout: [N, OC] },
        gpu: (t) => [...linearForward(k, t.out, t.inp, t.w16, t.bias), ...linearBackward(k, t.dinp, null, null, t.dout, t.inp, t.w16)],
        ref: (x) => {
          linearForwardCpu(x.out, x.inp, x.w16, x.bias, N, IC, OC);
          linearBackwardCpu(x.dinp, null, null, x.dout, x.inp, x.w16, N, IC, OC);
        },
        tolerance: { out: TOL, dinp: TOL },
      });
    });

    it('embeddingForward gathers rows of an f16 wte exactly', async (ctx) => {
      if (skip) return ctx.skip(skip);
      await checkKernel(gpu, {
        shapes: { out: [B, T, C], ids: { shape: [B, T], data: randomInts(B * T, 3, V) }, wte: { shape: [V, C], f16: true } },
        gpu: (t) => embeddingForward(k, t.out, t.ids, t.wte),
        ref: (x) => embeddingForwardCpu(x.out, x.ids, x.wte, V, C),
        tolerance: { out: 0 },
      });
    });
  });
}
