// The chunked loss head (lm_head + cross-entropy in row chunks over a vocabulary in row parts) against the
// unchunked kernels (linearForward + crossentropyForward / crossentropyBackward + linearBackward) and the CPU
// reference: losses, lse, stats, dh (`+=`), for ragged chunks, unequal vocabulary parts, and Llama-3's vocabulary.

import { describe, expect, it } from 'vitest';
import { createRowParts, createTensor, uploadRows, type RowPart, type Tensor } from '../gpu/tensor';
import { testGpu } from '../testing/gpu';
import { lossHead as lossHeadCpu } from './kernels/crossentropy.cpu';
import { crossentropyBackward, crossentropyForward, type KernelLib, kernelLib, linearBackward, linearForward } from './kernels';
import { maxScaledAbsError } from './reference/compare';
import { addArrays, gpuTensor, randomArray, randomInts, runAndRead, TUNINGS } from '../testing/kernels';
import { LossHead, lossHeadBytes, type LossHeadOptions } from './loss-head';

const gpu = await testGpu();

interface Problem {
  B: number;
  T: number;
  C: number;
  V: number;
  hf: Float32Array; // (N, C)
  W: Float32Array; // (V, C)
  ids: Int32Array; // (B, T)
  mask: Int32Array; // (B, T)
}

function problem(B: number, T: number, C: number, V: number, seed: number, maskAll = false): Problem {
  const N = B * T;
  const mask = maskAll ? new Int32Array(N) : Int32Array.from(randomArray(N, seed + 3), (x) => (x > -0.4 ? 1 : 0));
  return { B, T, C, V, hf: randomArray(N * C, seed), W: randomArray(V * C, seed + 1), ids: randomInts(N, seed + 2, V), mask };
}

/** Float64 reference (lossHeadCpu): logits, lse of every row, the cross-entropy, and dh = dloss · dlogits · W. */
const reference = (p: Problem, dloss = 1) => lossHeadCpu(p.hf, p.W, p.ids, p.mask, p.B, p.T, p.C, p.V, dloss);

/** Row parts of W at the given boundaries (e.g. [0, 128, 192, V]). */
function partsAt(p: Problem, bounds: number[]): RowPart[] {
  return bounds.slice(0, -1).map((lo, i) => ({ rowStart: lo, tensor: gpuTensor(gpu, `lm_head.part${i}`, [bounds[i + 1] - lo, p.C], p.W.subarray(lo * p.C, bounds[i + 1] * p.C)) }));
}

interface Buffers {
  hf: Tensor;
  ids: Tensor;
  mask: Tensor;
  losses: Tensor;
  lse: Tensor;
  stats: Tensor;
  dh: Tensor;
  dh0: Float32Array;
}

function buffers(p: Problem, seed: number): Buffers {
  const { B, T, C } = p;
  const dh0 = randomArray(B * T * C, seed); // dh accumulates onto what it held
  return {
    hf: gpuTensor(gpu, 'hf', [B, T, C], p.hf), // (B, T, C)
    ids: gpuTensor(gpu, 'ids', [B, T], p.ids, 'i32'), // (B, T)
    mask: gpuTensor(gpu, 'mask', [B, T], p.mask, 'i32'), // (B, T)
    losses: gpuTensor(gpu, 'losses', [B, T], randomArray(B * T, seed + 1)), // (B, T): stale values must be overwritten
    lse: gpuTensor(gpu, 'lse', [B, T], randomArray(B * T, seed + 2)), // (B, T)
    stats: createTensor(gpu.device, 'stats', [2]), // (2)
    dh: gpuTensor(gpu, 'dh', [B, T, C], dh0), // (B, T, C)
    dh0,
  };
}

async function runHead(k: KernelLib, p: Problem, parts: RowPart[], opts: LossHeadOptions & { dloss?: number }) {
  const b = buffers(p, 50);
  const head = new LossHead(k, { ...b, lmHeadParts: parts, V: p.V, T: p.T, training: true, ...opts });
  const [losses, lse, stats, dh] = await runAndRead(gpu, [...head.forwardCalls, ...head.backwardCalls], b.losses, b.lse, b.stats, b.dh);
  return { head, losses, lse, stats, dh, dh0: b.dh0 };
}

/** The unchunked path: the whole (N, V) logits and dlogits. */
async function runUnchunked(k: KernelLib, p: Problem) {
  const { B, T, C, V } = p;
  const b = buffers(p, 50);
  const W = gpuTensor(gpu, 'lm_head', [V, C], p.W); // (V, C)
  const logits = createTensor(gpu.device, 'logits', [B, T, V]); // (B, T, V)
  const dlogits = createTensor(gpu.device, 'dlogits', [B, T, V]); // (B, T, V)
  const calls = [
    ...linearForward(k, logits, b.hf, W, null),
    ...crossentropyForward(k, b.losses, b.lse, b.stats, logits, b.ids, b.mask, T),
    ...crossentropyBackward(k, dlogits, logits, b.lse, b.stats, b.ids, b.mask, T),
    ...linearBackward(k, b.dh, null, null, dlogits, b.hf, W),
  ];
  const [losses, lse, stats, dh] = await runAndRead(gpu, calls, b.losses, b.lse, b.stats, b.dh);
  return { losses, lse, stats, dh };
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
const errors: string[] = [];

function expectMatches(got: Awaited<ReturnType<typeof runHead>>, want: ReturnType<typeof reference>, tol: { loss: number; dh: number }, what: string) {
  expect(got.stats[1]).toBe(want.count);
  const e = {
    loss: rel(got.stats[0], want.loss),
    losses: maxScaledAbsError(got.losses, want.losses),
    lse: maxScaledAbsError(got.lse, want.lse),
    dh: maxScaledAbsError(got.dh, addArrays(got.dh0, want.dh)),
  };
  errors.push(`${what}: loss ${e.loss.toExponential(1)}, losses ${e.losses.toExponential(1)}, lse ${e.lse.toExponential(1)}, dh ${e.dh.toExponential(1)}`);
  expect(e.loss).toBeLessThan(tol.loss);
  expect(e.losses).toBeLessThan(tol.loss);
  expect(e.lse).toBeLessThan(tol.loss);
  expect(e.dh).toBeLessThan(tol.dh);
}

const TOL = { loss: 1e-5, dh: 1e-5 };

for (const [tuningName, tuning] of TUNINGS) {
  describe(tuningName, () => {
    const k = kernelLib(gpu, tuning);

    it('one vocabulary part: chunks of 8 and 16 rows (ragged last chunk) and one chunk equal the unchunked kernels and the CPU reference', async () => {
      const p = problem(3, 9, 24, 611, 1); // N = 27
      const want = reference(p);
      const whole = await runUnchunked(k, p);
      const parts = partsAt(p, [0, p.V]);
      for (const chunkRows of [8, 16, 27, 1000]) {
        const got = await runHead(k, p, parts, { chunkRows });
        expect(got.head.plan.R).toBe(Math.min(chunkRows, 27));
        expectMatches(got, want, TOL, `V=611 R=${chunkRows}`);
        // Against the unchunked GPU path: the same kernels' arithmetic up to the order of the log-sum-exp.
        expect(maxScaledAbsError(got.losses, whole.losses)).toBeLessThan(1e-6);
        expect(maxScaledAbsError(got.dh, whole.dh)).toBeLessThan(1e-6);
        expect(rel(got.stats[0], whole.stats[0])).toBeLessThan(1e-6);
        expect(got.head.bytes).toBe(lossHeadBytes(27, p.V, p.C, { training: true, chunkRows, bindingBytes: gpu.device.limits.maxStorageBufferBindingSize }));
        got.head.destroy();
      }
    });

    it('a vocabulary in 3 parts of unequal size (128, 64, 108), dloss 0.5', async () => {
      const p = problem(2, 13, 16, 300, 2); // N = 26
      const want = reference(p, 0.5);
      const parts = partsAt(p, [0, 128, 192, 300]);
      for (const chunkRows of [4, 12, 26]) {
        const got = await runHead(k, p, parts, { chunkRows, dloss: 0.5 });
        expect(got.head.plan.partRows).toBe(128);
        expectMatches(got, want, TOL, `V=300 in 3 parts, R=${chunkRows}`);
        expect(got.head.bytes).toBe(lossHeadBytes(26, p.V, p.C, { training: true, chunkRows, partRows: 128 }));
        got.head.destroy();
      }
    });

    it('the default chunk size follows maxChunkBytes in multiples of 64 rows; readLogits assembles the full logits', async () => {
      const p = problem(2, 70, 8, 200, 3); // N = 140
      const want = reference(p);
      const parts = createRowParts(gpu.device, 'lm_head', p.V, p.C, 'f32', 96 * p.C * 4); // parts of 64, 64, 64, 8 rows
      expect(parts.map((q) => q.tensor.shape[0])).toEqual([64, 64, 64, 8]);
      uploadRows(gpu.device, parts, 0, p.W);
      const maxChunkBytes = 100 * 64 * 4; // 100 rows of a 64-wide chunk: R = 64
      const got = await runHead(k, p, parts, { maxChunkBytes });
      expect(got.head.plan).toMatchObject({ R: 64, chunks: 3, partRows: 64 });
      expectMatches(got, want, TOL, 'V=200 in 4 parts, default R=64');
      expect(got.head.bytes).toBe(lossHeadBytes(140, p.V, p.C, { training: true, maxChunkBytes, partRows: 64 }));
      const logits = await got.head.readLogits(gpu.device);
      expect(maxScaledAbsError(logits, want.logits)).toBeLessThan(1e-5);
      got.head.destroy();
    });
  });
}

describe('edges', () => {
  const k = kernelLib(gpu);

  it('nothing counted: loss 0, dh unchanged, no NaN', async () => {
    const p = problem(1, 6, 16, 50, 4, true);
    const got = await runHead(k, p, partsAt(p, [0, 20, 50]), { chunkRows: 4 });
    expect(Array.from(got.stats)).toEqual([0, 0]);
    expect(Array.from(got.losses).every((x) => x === 0)).toBe(true);
    expect(Array.from(got.dh)).toEqual(Array.from(got.dh0));
  });

  it('forward only: no dlogits chunk, no backward calls; refuses chunk rows that misalign the views', async () => {
    const p = problem(2, 5, 24, 40, 5);
    const b = buffers(p, 60);
    const parts = partsAt(p, [0, p.V]);
    const head = new LossHead(k, { ...b, lmHeadParts: parts, V: p.V, T: p.T, training: false, chunkRows: 8 });
    expect(head.backwardCalls).toEqual([]);
    expect(head.bytes).toBe(lossHeadBytes(10, p.V, p.C, { training: false, chunkRows: 8 }));
    expect(head.bytes).toBeLessThan(lossHeadBytes(10, p.V, p.C, { training: true, chunkRows: 8 }));
    const [losses, stats] = await runAndRead(gpu, head.forwardCalls, b.losses, b.stats);
    const want = reference(p);
    expect(maxScaledAbsError(losses, want.losses)).toBeLessThan(1e-5);
    expect(rel(stats[0], want.loss)).toBeLessThan(1e-5);
    expect(() => new LossHead(k, { ...b, lmHeadParts: parts, V: p.V, T: p.T, training: false, chunkRows: 4 })).toThrow(/not multiples of 256/);
    expect(() => new LossHead(k, { ...b, lmHeadParts: parts, V: p.V + 1, T: p.T, training: false })).toThrow(/expected V/);
  });

  it("Llama-3's vocabulary (V = 128256) in 3 parts, 4-row chunks: the logits are never whole; loss and dh match the CPU reference", async () => {
    const p = problem(2, 4, 16, 128256, 6); // N = 8 (SwiftShader runs a (4, 42752) logits chunk in ~1 s)
    const want = reference(p);
    const parts = createRowParts(gpu.device, 'lm_head', p.V, p.C, 'f32', 3 * 2 ** 20);
    expect(parts.map((q) => q.tensor.shape[0])).toEqual([42752, 42752, 42752]);
    for (let r = 0; r < p.V; r += 50000) uploadRows(gpu.device, parts, r, p.W.subarray(r * p.C, Math.min(p.V, r + 50000) * p.C));
    const got = await runHead(k, p, parts, { chunkRows: 4 });
    expect(got.head.plan).toMatchObject({ R: 4, chunks: 2, partRows: 42752 });
    expect(got.head.bytes).toBeLessThan((8 * p.V * 4) / 2); // two chunk buffers of a sixth of the logits each
    expectMatches(got, want, { loss: 1e-5, dh: 1e-4 }, 'V=128256 in 3 parts, R=4');
    got.head.destroy();
  });

  it('reports the measured errors', () => {
    console.log(errors.join('\n'));
  });
});
