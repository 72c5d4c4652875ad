// Shared by the kernel tests: seeded random data, GPU round trips, and error measures.

import type { Gpu } from '../../gpu/device';
import { f16BitsToNumber, numberToF16Bits } from '../../model/dtype';
import { run, type KernelCall } from '../../gpu/kernel';
import { readback, tensorFrom, type GpuDType, type Tensor } from '../../gpu/tensor';
import { GPU_TUNING, SOFTWARE_TUNING, type Tuning } from './lib';
import { seededRandom } from '../../random';

/** Deterministic uniform numbers in [lo, hi). */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * random());
}

export function randomInts(n: number, seed: number, hi: number): Int32Array {
  return Int32Array.from(randomArray(n, seed, 0, 1), (x) => Math.min(hi - 1, Math.floor(x * hi)));
}

/** Both workgroup shapes run on every adapter, so the GPU shapes are tested on SwiftShader too. */
export const TUNINGS: [string, Tuning][] = [
  ['software-adapter workgroups', SOFTWARE_TUNING],
  ['GPU workgroups', GPU_TUNING],
];

export function gpuTensor(gpu: Gpu, label: string, shape: number[], data: Float32Array | Int32Array | Uint16Array, dtype: GpuDType = 'f32'): Tensor {
  return tensorFrom(gpu.device, label, shape, data, dtype);
}

/** Submit the calls, wait, surface any GPU error, and read the given tensors back. */
export async function runAndRead(gpu: Gpu, calls: KernelCall[], ...outs: Tensor[]): Promise<Float32Array[]> {
  run(gpu.device, calls, 'test');
  await gpu.device.queue.onSubmittedWorkDone();
  gpu.throwIfFailed();
  const res = await Promise.all(outs.map((t) => readback(gpu.device, t)));
  gpu.throwIfFailed();
  return res;
}

/** max |got − want| / (1 + |want|) */
export function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} vs ${want.length}`);
  let e = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i]));
    if (!(d <= e)) e = Number.isNaN(d) ? Infinity : Math.max(e, d);
  }
  return e;
}

/** ‖got − want‖ / ‖want‖ */
export function relL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

export const addArrays = (a: ArrayLike<number>, b: ArrayLike<number>): Float64Array => Float64Array.from(a, (x, i) => x + b[i]);

/** f16 bits of each value and the values those bits hold, for f16 weight tensors. */
export function toHalf(x: Float32Array): { bits: Uint16Array; values: Float32Array } {
  const bits = Uint16Array.from(x, numberToF16Bits);
  return { bits, values: Float32Array.from(bits, f16BitsToNumber) };
}
