// Kernel tests in a few lines: checkKernel runs a kernel on the GPU and its CPU reference (src/nn/kernels/<op>.cpu.ts)
// on the same seeded data and compares the outputs (tinygrad's helper_test_op). Plus seeded random data, GPU round
// trips and f16 weights for the tests that need more than one kernel.

import { expect } from 'vitest';
import type { Gpu } from '../gpu/device';
import { run, type KernelCall } from '../gpu/kernel';
import { readback, tensorFrom, type GpuDType, type Tensor } from '../gpu/tensor';
import { f16BitsToNumber, numberToF16Bits } from '../model/dtype';
import { GPU_TUNING, SOFTWARE_TUNING, type Tuning } from '../nn/kernels/lib';
import { maxScaledAbsError, relL2 } from '../nn/reference/compare';
import { seededRandom } from '../random';

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

export function gpuTensor(gpu: Gpu, label: string, shape: readonly number[], data: Float32Array | Int32Array | Uint16Array, dtype: GpuDType = 'f32'): Tensor {
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

export const addArrays = (a: ArrayLike<number>, b: ArrayLike<number>): Float64Array => Float64Array.from(a, (x, i) => x + b[i]);

/** f16 bits of each value and the values those bits hold, for f16 weight tensors. */
export function toHalf(x: Float32Array): { bits: Uint16Array; values: Float32Array } {
  const bits = Uint16Array.from(x, numberToF16Bits);
  return { bits, values: Float32Array.from(bits, f16BitsToNumber) };
}

/**
 * One buffer of a checked kernel: its shape (random f32 values in [-1, 1)), or the shape with a value range, given
 * data (ids and masks: Int32Array, bound as i32), or `f16` (stored as f16 bits on the GPU; the reference gets the
 * values those bits hold).
 */
export type BufferSpec = readonly number[] | { shape: readonly number[]; range?: [number, number]; data?: Float32Array | Int32Array; f16?: boolean };

/** How an output is compared: max |gpu − ref| / (1 + |ref|) below a number (0: exactly equal), or by relative L2. */
export type Tolerance = number | { relL2: number };

export interface KernelCheck<K extends string> {
  /** Every buffer the kernel binds, by name. */
  shapes: Record<K, BufferSpec>;
  /** The kernel's calls on the GPU tensors. */
  gpu: (t: Record<K, Tensor>) => KernelCall[];
  /** The CPU reference on Float64Array copies of the same data (ids and masks too), writing its outputs in place. */
  ref: (a: Record<K, Float64Array>) => void;
  /** The outputs to compare, with their tolerances. */
  tolerance: Partial<Record<K, Tolerance>>;
  /** Seed of the random data (default 1; buffer i gets seed + i). */
  seed?: number;
}

/**
 * Every buffer starts with the same data on both sides, outputs included, so a `+=` output checks that it
 * accumulates and an `=` output that it overwrites stale values. Returns both sides' outputs for further checks.
 */
export async function checkKernel<K extends string>(gpu: Gpu, c: KernelCheck<K>): Promise<{ got: Record<K, Float32Array>; want: Record<K, Float64Array> }> {
  const names = Object.keys(c.shapes) as K[];
  const tensors = {} as Record<K, Tensor>;
  const host = {} as Record<K, Float64Array>;
  names.forEach((name, i) => {
    const spec = c.shapes[name];
    const { shape, range = [-1, 1], data, f16 = false } = Array.isArray(spec) ? { shape: spec as readonly number[] } : (spec as Exclude<BufferSpec, readonly number[]>);
    const n = shape.reduce((a, b) => a * b, 1);
    const values = data ?? randomArray(n, (c.seed ?? 1) + i, range[0], range[1]);
    if (values instanceof Int32Array) {
      tensors[name] = gpuTensor(gpu, name, shape, values, 'i32');
      host[name] = Float64Array.from(values);
    } else if (f16) {
      const half = toHalf(values);
      tensors[name] = gpuTensor(gpu, name, shape, half.bits, 'f16');
      host[name] = Float64Array.from(half.values);
    } else {
      tensors[name] = gpuTensor(gpu, name, shape, values);
      host[name] = Float64Array.from(values);
    }
  });
  const checked = Object.keys(c.tolerance) as K[];
  const read = await runAndRead(gpu, c.gpu(tensors), ...checked.map((name) => tensors[name]));
  c.ref(host);
  const got = {} as Record<K, Float32Array>;
  checked.forEach((name, i) => {
    got[name] = read[i];
    const tol = c.tolerance[name]!;
    if (typeof tol === 'number') {
      const err = maxScaledAbsError(read[i], host[name]);
      if (tol === 0) expect(err, name).toBe(0);
      else expect(err, name).toBeLessThan(tol);
    } else {
      expect(relL2(read[i], host[name]), name).toBeLessThan(tol.relL2);
    }
  });
  for (const t of Object.values<Tensor>(tensors)) t.buffer.destroy();
  return { got, want: host };
}
