// The hand-encoded ONNX model must be a valid ONNX MatMul that computes inp·Wᵀ: onnxruntime-web (wasm EP, an
// independent protobuf reader and MatMul) runs it, and its output is compared with a float64 CPU product.
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { matmulModel } from './onnx-matmul';

describe('matmulModel', () => {
  it('runs in onnxruntime-web and computes X·Wᵀ with ragged sizes', async () => {
    setFlagsFromString('--liftoff-only'); // ORT's wasm compiles in ~1 s instead of ~30 s of CPU
    const ort = await import('onnxruntime-web');
    ort.env.wasm.numThreads = 1;
    const [N, IN, OUT] = [5, 37, 130]; // 130 needs a two-byte varint in the shape
    const W = Float32Array.from({ length: OUT * IN }, (_, i) => Math.sin(i * 0.37));
    const X = Float32Array.from({ length: N * IN }, (_, i) => Math.cos(i * 0.11));
    const session = await ort.InferenceSession.create(matmulModel(N, IN, OUT, W), { executionProviders: ['wasm'] });
    expect(session.inputNames).toEqual(['X']);
    expect(session.outputNames).toEqual(['Y']);
    const { Y } = await session.run({ X: new ort.Tensor('float32', X, [N, IN]) });
    expect(Y.dims).toEqual([N, OUT]);
    const y = Y.data as Float32Array;
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < OUT; o++) {
        let ref = 0;
        for (let i = 0; i < IN; i++) ref += X[n * IN + i] * W[o * IN + i];
        expect(Math.abs(y[n * OUT + o] - ref), `Y[${n}, ${o}]`).toBeLessThan(1e-4);
      }
    }
    await session.release();
  });

  it('refuses a weight of the wrong size', () => {
    expect(() => matmulModel(2, 3, 4, new Float32Array(11))).toThrow(/W has 11 values, expected 4×3/);
  });
});
