// Tensor views (a byte range of another tensor's buffer) and row-split matrices (RowPart[]): uploads, readbacks and
// kernels touch exactly the viewed range; the embedding lookup over row parts equals the CPU reference.

import { describe, expect, it } from 'vitest';
import { testGpu } from '../testing/gpu';
import { embeddingForward as embeddingForwardCpu } from '../nn/kernels/embedding.cpu';
import { copy, embeddingForward, embeddingForwardParts, fill, kernelLib } from '../nn/kernels';
import { gpuTensor, randomArray, randomInts, runAndRead } from '../testing/kernels';
import { createRowParts, createTensor, readback, rowPartsRows, tensorFrom, upload, uploadRows, view } from './tensor';

const gpu = await testGpu();
const k = kernelLib(gpu);

describe('view', () => {
  it('reads, uploads and binds only its range', async () => {
    const n = 1000;
    const data = randomArray(n, 1);
    const t = tensorFrom(gpu.device, 't', [n], data);
    const v = view(t, 128, [10, 30]); // elements [128, 428): byte offset 512
    expect(v.offset).toBe(512);
    expect(v.numel).toBe(300);
    expect(v.viewOf).toBe(t);
    expect(Array.from(await readback(gpu.device, v))).toEqual(Array.from(data.subarray(128, 428)));

    upload(gpu.device, v, new Float32Array(300).fill(7));
    const [afterUpload] = await runAndRead(gpu, [], t);
    const want = Float32Array.from(data);
    want.fill(7, 128, 428);
    expect(Array.from(afterUpload)).toEqual(Array.from(want));

    // A kernel over a view of a view (elements [192, 192 + 65)) writes only there: the binding is the range.
    const vv = view(v, 64, [65]);
    expect(vv.offset).toBe(768);
    expect(vv.viewOf).toBe(t);
    const [afterFill] = await runAndRead(gpu, fill(k, vv, -1), t);
    want.fill(-1, 192, 257);
    expect(Array.from(afterFill)).toEqual(Array.from(want));

    // Copy between views of two tensors.
    const u = createTensor(gpu.device, 'u', [512]);
    const [afterCopy] = await runAndRead(gpu, copy(k, view(u, 256, [100]), view(t, 64, [100])), u);
    expect(Array.from(afterCopy.subarray(256, 356))).toEqual(Array.from(want.subarray(64, 164)));
    expect(afterCopy.subarray(0, 256).every((x) => x === 0) && afterCopy.subarray(356).every((x) => x === 0)).toBe(true);
  });

  it('refuses an unaligned offset, a range outside the tensor, and an odd-length f16 upload into a view', () => {
    const t = createTensor(gpu.device, 't', [1000]);
    expect(() => view(t, 10, [4])).toThrow(/byte offset 40 is not a multiple of 256/);
    expect(() => view(t, 960, [64])).toThrow(/not inside t/);
    expect(() => view(t, -64, [4])).toThrow(/not inside/);
    const h = createTensor(gpu.device, 'h', [1024], 'f16');
    expect(() => upload(gpu.device, view(h, 128, [3]), new Uint16Array(3))).toThrow(/not a multiple of 4/);
  });
});

describe('row parts', () => {
  it('createRowParts splits a matrix over a binding budget; uploadRows streams slices across part boundaries', async () => {
    const [V, C] = [300, 12];
    const parts = createRowParts(gpu.device, 'wte', V, C, 'f32', 128 * C * 4); // ≤ 128 rows a part
    expect(parts.map((p) => [p.rowStart, p.tensor.shape[0]])).toEqual([[0, 128], [128, 128], [256, 44]]);
    expect(rowPartsRows(parts)).toBe(V);
    const data = randomArray(V * C, 2);
    for (const [lo, hi] of [[0, 100], [100, 250], [250, 300]]) uploadRows(gpu.device, parts, lo, data.subarray(lo * C, hi * C));
    const got = await runAndRead(gpu, [], ...parts.map((p) => p.tensor));
    expect(Array.from(got.flatMap((g) => Array.from(g)))).toEqual(Array.from(data));
    expect(() => uploadRows(gpu.device, parts, 290, data.subarray(0, 20 * C))).toThrow(/outside/);
  });

  it('embeddingForward over row parts of unequal size fills every row (ids outside the table: zero rows)', async () => {
    const [B, T, V, C] = [3, 11, 300, 20];
    const wte = randomArray(V * C, 3);
    const ids = randomInts(B * T, 4, V);
    ids[5] = V + 3; // outside the table
    ids[6] = -1;
    ids[7] = 0;
    ids[8] = V - 1;
    ids[9] = 128; // first row of the second part
    const bounds = [0, 128, 192, V]; // parts of 128, 64, 108 rows
    const parts = bounds.slice(0, -1).map((lo, i) => ({ rowStart: lo, tensor: gpuTensor(gpu, `wte.part${i}`, [bounds[i + 1] - lo, C], wte.subarray(lo * C, bounds[i + 1] * C)) }));
    const tIds = gpuTensor(gpu, 'ids', [B, T], ids, 'i32');
    const out = gpuTensor(gpu, 'out', [B, T, C], randomArray(B * T * C, 5)); // stale values must go
    const [got] = await runAndRead(gpu, embeddingForwardParts(k, out, tIds, parts), out);
    const want = new Float64Array(ids.length * C);
    embeddingForwardCpu(want, ids, wte, V, C);
    expect(Array.from(got)).toEqual(Array.from(want));

    // One part alone writes only its rows.
    const stale = randomArray(B * T * C, 6);
    const out2 = gpuTensor(gpu, 'out2', [B, T, C], stale);
    const [only] = await runAndRead(gpu, embeddingForward(k, out2, tIds, parts[1].tensor, parts[1].rowStart), out2);
    for (let r = 0; r < B * T; r++) {
      const inPart = ids[r] >= 128 && ids[r] < 192;
      const row = Array.from(only.subarray(r * C, (r + 1) * C));
      expect(row).toEqual(Array.from((inPart ? Float32Array.from(want) : stale).subarray(r * C, (r + 1) * C)));
    }
  });
});
