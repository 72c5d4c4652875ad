// The same matrix multiplications (out = inp·Wᵀ) through our linearForward and through onnxruntime-web's webgpu
// execution provider, on one GPUDevice, in one run. Both sides are timed the same way: one submission (ours) or
// one session.run (ORT) per repetition, inputs and outputs left on the GPU, then the wall clock until the queue
// is idle. The outputs are compared too, so that the ratio is between two multiplications of the same numbers.

import type * as Ort from 'onnxruntime-web';
import type { Gpu } from '../gpu/device';
import { readback, tensorFrom, createTensor } from '../gpu/tensor';
import { kernelLib, linearForward } from '../nn/kernels';
import type { BenchShape } from './cases';
import { matmulModel } from './onnx-matmul';
import { fixed, type BenchSection } from './report';

export type OrtModule = typeof Ort;

/** Loads onnxruntime-web with its webgpu EP for this runtime (Node and the browser differ). */
export type OrtLoader = () => Promise<OrtModule>;

const now = () => performance.now();

function randomArray(n: number, seed: number, scale: number): Float32Array {
  let x = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x / 4294967296 - 0.5) * 2 * scale;
  });
}

export async function benchOrt(gpu: Gpu, s: BenchShape, loadOrt: OrtLoader, reps: number, tooSlow: (flops: number) => boolean, out: BenchSection, log: (l: string) => void): Promise<void> {
  const t0 = now();
  const ort = await loadOrt();
  out.notes.push(`onnxruntime-web ${ort.env.versions.web ?? ort.env.versions.common} loaded in ${fixed((now() - t0) / 1000, 1)} s; timing: wall clock, one submit / session.run per rep, ${reps} reps after one warm-up`);
  const device = gpu.device;
  const k = kernelLib(gpu);
  const N = s.B * s.T;
  const cases = [
    { name: 'q_proj', inp: s.C, outF: s.NH * s.HD },
    { name: 'gate_proj', inp: s.C, outF: s.I },
    { name: 'lm_head', inp: s.C, outF: s.V },
  ];
  for (const c of cases) {
    // Both sides, warm-up included; ORT has run ~2-4× slower than ours on SwiftShader.
    if (tooSlow(2 * N * c.inp * c.outF * (reps + 1) * 4)) {
      out.notes.push(`skipped ${c.name} (${N},${c.inp})·(${c.outF},${c.inp})ᵀ: predicted over --max-step-seconds here`);
      continue;
    }
    log(`onnxruntime: ${c.name} (${N},${c.inp})·(${c.outF},${c.inp})ᵀ`);
    const X = randomArray(N * c.inp, 17, 1);
    const W = randomArray(c.outF * c.inp, 29, 0.05);
    const x = tensorFrom(device, 'ort.x', [N, c.inp], X);
    const w = tensorFrom(device, 'ort.w', [c.outF, c.inp], W);
    const y = createTensor(device, 'ort.y', [N, c.outF]);
    const calls = linearForward(k, y, x, w, null);
    const ours = async (n: number) => {
      const start = now();
      for (let r = 0; r < n; r++) {
        const encoder = device.createCommandEncoder({ label: 'bench.linear' });
        const pass = encoder.beginComputePass();
        for (const call of calls) call.encode(pass);
        pass.end();
        device.queue.submit([encoder.finish()]);
      }
      await device.queue.onSubmittedWorkDone();
      return (now() - start) / 1000 / Math.max(n, 1);
    };
    const session = await ort.InferenceSession.create(matmulModel(N, c.inp, c.outF, W), {
      executionProviders: [{ name: 'webgpu', device } as Ort.InferenceSession.WebGpuExecutionProviderOption],
      preferredOutputLocation: 'gpu-buffer',
    });
    const feeds = { X: ort.Tensor.fromGpuBuffer(x.buffer, { dataType: 'float32', dims: [N, c.inp] }) };
    const theirs = async (n: number) => {
      const start = now();
      for (let r = 0; r < n; r++) (await session.run(feeds)).Y.dispose();
      await device.queue.onSubmittedWorkDone();
      return (now() - start) / 1000 / Math.max(n, 1);
    };
    try {
      await ours(1);
      const first = await session.run(feeds);
      const ortY = (await first.Y.getData(true)) as Float32Array;
      const ourY = await readback(device, y);
      let maxDiff = 0;
      let maxRef = 0;
      for (let i = 0; i < ourY.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(ourY[i] - ortY[i]));
        maxRef = Math.max(maxRef, Math.abs(ourY[i]));
      }
      // Alternate the two sides rep by rep so that machine noise weighs on both.
      let a = 0;
      let b = 0;
      for (let r = 0; r < reps; r++) {
        a += await ours(1);
        b += await theirs(1);
      }
      a /= reps;
      b /= reps;
      gpu.throwIfFailed();
      const flops = 2 * N * c.inp * c.outF;
      out.rows.push({
        matmul: c.name,
        shape: `(${N},${c.inp})·(${c.outF},${c.inp})ᵀ`,
        'ours ms': fixed(a * 1e3, 2),
        'ORT ms': fixed(b * 1e3, 2),
        'ours GFLOP/s': fixed(flops / a / 1e9, 3),
        'ORT GFLOP/s': fixed(flops / b / 1e9, 3),
        'ORT/ours time': `${fixed(b / a, 2)}×`,
        'max |Δ| / max |y|': Number((maxDiff / maxRef).toExponential(1)),
      });
    } finally {
      await session.release();
      calls.forEach((call) => call.destroy());
      for (const t of [x, w, y]) t.buffer.destroy();
    }
  }
}
