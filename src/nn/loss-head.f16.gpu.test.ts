// The chunked loss head and the embedding lookup over an f16 lm_head / embedding in row parts (gpu-f16 tier: Dawn
// on lavapipe; skipped, with the reason, on an adapter without shader-f16). The CPU references use the values the
// f16 bits hold, so only f32 rounding differs.

import { beforeAll, expect, it } from 'vitest';
import type { Gpu } from '../gpu/device';
import { createRowParts, createTensor, uploadRows } from '../gpu/tensor';
import { f16TestGpu } from '../testing/lavapipe';
import { lossHead as lossHeadCpu } from './kernels/crossentropy.cpu';
import { embeddingForward as embeddingForwardCpu } from './kernels/embedding.cpu';
import { embeddingForwardParts, kernelLib } from './kernels';
import { maxScaledAbsError } from './reference/compare';
import { addArrays, gpuTensor, randomArray, randomInts, runAndRead, toHalf } from '../testing/kernels';
import { LossHead } from './loss-head';

let gpu: Gpu;
let skip: string | null;
beforeAll(async () => {
  ({ gpu, skip } = await f16TestGpu());
});

const [B, T, C, V] = [2, 9, 16, 300]; // N = 18
const N = B * T;

it('LossHead over an f16 lm_head in 3 row parts, 8-row chunks, equals the CPU reference', async (ctx) => {
  if (skip) return ctx.skip(skip);
  const k = kernelLib(gpu);
  const half = toHalf(randomArray(V * C, 11)); // (V, C)
  const hf = randomArray(N * C, 12);
  const ids = randomInts(N, 13, V);
  const mask = Int32Array.from(randomArray(N, 14), (x) => (x > -0.5 ? 1 : 0));
  const parts = createRowParts(gpu.device, 'lm_head', V, C, 'f16', 128 * C * 2); // 128, 128, 44 rows
  expect(parts.length).toBe(3);
  uploadRows(gpu.device, parts, 0, half.bits);
  const dh0 = randomArray(N * C, 15);
  const b = {
    hf: gpuTensor(gpu, 'hf', [B, T, C], hf), // (B, T, C)
    ids: gpuTensor(gpu, 'ids', [B, T], ids, 'i32'), // (B, T)
    mask: gpuTensor(gpu, 'mask', [B, T], mask, 'i32'), // (B, T)
    losses: createTensor(gpu.device, 'losses', [B, T]), // (B, T)
    lse: createTensor(gpu.device, 'lse', [B, T]), // (B, T)
    stats: createTensor(gpu.device, 'stats', [2]), // (2)
    dh: gpuTensor(gpu, 'dh', [B, T, C], dh0), // (B, T, C)
  };
  const head = new LossHead(k, { ...b, lmHeadParts: parts, V, T, training: true, chunkRows: 8 });
  const [losses, stats, dh] = await runAndRead(gpu, [...head.forwardCalls, ...head.backwardCalls], b.losses, b.stats, b.dh);
  const want = lossHeadCpu(hf, half.values, ids, mask, B, T, C, V);
  expect(stats[1]).toBe(want.count);
  expect(Math.abs(stats[0] - want.loss) / want.loss).toBeLessThan(1e-5);
  expect(maxScaledAbsError(losses, want.losses)).toBeLessThan(1e-5);
  expect(maxScaledAbsError(dh, addArrays(dh0, want.dh))).toBeLessThan(1e-5);
  head.destroy();
});

it('embeddingForwardParts gathers rows of an f16 embedding in row parts exactly', async (ctx) => {
  if (skip) return ctx.skip(skip);
  const k = kernelLib(gpu);
  const half = toHalf(randomArray(V * C, 21));
  const ids = randomInts(N, 22, V);
  const parts = createRowParts(gpu.device, 'wte', V, C, 'f16', 64 * C * 2); // 5 parts of 64 rows, one of 44
  uploadRows(gpu.device, parts, 0, half.bits);
  const out = gpuTensor(gpu, 'out', [B, T, C], randomArray(N * C, 23)); // (B, T, C)
  const [got] = await runAndRead(gpu, embeddingForwardParts(k, out, gpuTensor(gpu, 'ids', [B, T], ids, 'i32'), parts), out);
  const want = new Float64Array(ids.length * C);
  embeddingForwardCpu(want, ids, half.values, V, C);
  expect(maxScaledAbsError(got, want)).toBe(0);
});
