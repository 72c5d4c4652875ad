// A GPU buffer with a shape and an element type: what kernels read and write.

import { GradPruneError } from '../errors';

export type GpuDType = 'f32' | 'f16' | 'i32' | 'u32';
const BYTES: Record<GpuDType, number> = { f32: 4, f16: 2, i32: 4, u32: 4 };

export interface Tensor {
  label: string;
  shape: readonly number[];
  dtype: GpuDType;
  buffer: GPUBuffer;
  /** Element count (product of shape). */
  numel: number;
}

// Numeric flags: GPUBufferUsage is a global only once WebGPU exists (in Node, after ./node.ts installs Dawn's).
const STORAGE_USAGE = 0x80 | 0x04 | 0x08; // STORAGE | COPY_SRC | COPY_DST
const READBACK_USAGE = 0x01 | 0x08; // MAP_READ | COPY_DST
const MAP_READ = 0x0001;

/**
 * Allocate a zeroed tensor. Sizes round up to 4 bytes (f16 tensors of odd length).
 * Throws a GradPruneError naming the tensor when it exceeds the device's binding limit.
 */
export function createTensor(device: GPUDevice, label: string, shape: readonly number[], dtype: GpuDType = 'f32'): Tensor {
  const numel = shape.reduce((a, b) => a * b, 1);
  const bytes = Math.max(4, Math.ceil((numel * BYTES[dtype]) / 4) * 4);
  const limit = device.limits.maxStorageBufferBindingSize;
  if (bytes > limit) {
    throw new GradPruneError('memory', `Tensor ${label} [${shape.join(', ')}] needs ${bytes} bytes, over this GPU's binding limit of ${limit}.`, {
      subject: label,
      hint: 'Use a shorter sequence or a smaller batch.',
    });
  }
  const buffer = device.createBuffer({ label, size: bytes, usage: STORAGE_USAGE });
  return { label, shape, dtype, buffer, numel };
}

export function bytesOf(t: Pick<Tensor, 'numel' | 'dtype'>): number {
  return t.numel * BYTES[t.dtype];
}

/** Upload host data into a tensor (queued). */
export function upload(device: GPUDevice, t: Tensor, data: Float32Array | Int32Array | Uint32Array | Uint16Array): void {
  if (data.length !== t.numel) throw new Error(`${t.label}: uploading ${data.length} elements into [${t.shape.join(', ')}]`);
  const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength % 4 === 0) device.queue.writeBuffer(t.buffer, 0, bytes);
  else {
    const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
    padded.set(bytes);
    device.queue.writeBuffer(t.buffer, 0, padded);
  }
}

export function tensorFrom(device: GPUDevice, label: string, shape: readonly number[], data: Float32Array | Int32Array | Uint32Array | Uint16Array, dtype: GpuDType = 'f32'): Tensor {
  const t = createTensor(device, label, shape, dtype);
  upload(device, t, data);
  return t;
}

/** Copy a tensor back to the host: f32 tensors as Float32Array, i32 as Int32Array, u32 as Uint32Array, f16 as bits. */
export async function readback(device: GPUDevice, t: Tensor): Promise<Float32Array> {
  const raw = await readbackBytes(device, t);
  return new Float32Array(raw);
}

export async function readbackBytes(device: GPUDevice, t: Tensor): Promise<ArrayBuffer> {
  const size = t.buffer.size;
  const staging = device.createBuffer({ label: `${t.label}.readback`, size, usage: READBACK_USAGE });
  const encoder = device.createCommandEncoder({ label: `${t.label}.readback` });
  encoder.copyBufferToBuffer(t.buffer, 0, staging, 0, size);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(MAP_READ);
  const out = staging.getMappedRange().slice(0, bytesOf(t));
  staging.unmap();
  staging.destroy();
  return out;
}
