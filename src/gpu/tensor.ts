// A GPU buffer with a shape and an element type: what kernels read and write. A view is a Tensor over a byte
// range of another tensor's buffer (kernels bind just that range). A matrix too large for one storage binding is
// held as row parts (RowPart[]), each its own tensor, that kernels visit one by one.

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
  /** Byte offset of element 0 in `buffer`: 0 for a tensor that owns its buffer, a multiple of VIEW_ALIGNMENT for a view. */
  offset: number;
  /** For a view, the tensor it was cut from (the owner of `buffer`, which a view must not destroy). */
  viewOf?: Tensor;
}

// Numeric flags: GPUBufferUsage is a global only once WebGPU exists (in Node, after ./node.ts installs Dawn's).
const STORAGE_USAGE = 0x80 | 0x04 | 0x08; // STORAGE | COPY_SRC | COPY_DST
/** GPUMapMode.READ, and GPUBufferUsage.MAP_READ (the same bit). */
export const MAP_READ = 0x0001;
const READBACK_USAGE = MAP_READ | 0x08; // MAP_READ | COPY_DST

/**
 * Byte alignment of a view's offset: WebGPU's default `minStorageBufferOffsetAlignment`, the largest value an
 * adapter may require (the device keeps the default: requestGpu does not ask for less), so every device accepts it.
 * KernelCall checks a view against the device's own limit again when it binds one.
 */
export const VIEW_ALIGNMENT = 256;

export const elementBytes = (dtype: GpuDType): number => BYTES[dtype];

/** The largest tensor one storage binding can hold on this device: min(maxStorageBufferBindingSize, maxBufferSize). */
export function bindingLimit(device: GPUDevice): number {
  return Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
}

/**
 * Allocate a zeroed tensor. Sizes round up to 4 bytes (f16 tensors of odd length).
 * Throws a GradPruneError naming the tensor when it exceeds the device's binding limit
 * (split a matrix that large into row parts: createRowParts).
 */
export function createTensor(device: GPUDevice, label: string, shape: readonly number[], dtype: GpuDType = 'f32'): Tensor {
  const numel = shape.reduce((a, b) => a * b, 1);
  const bytes = Math.max(4, Math.ceil((numel * BYTES[dtype]) / 4) * 4);
  const limit = bindingLimit(device);
  if (bytes > limit) {
    throw new GradPruneError('memory', `Tensor ${label} [${shape.join(', ')}] needs ${bytes} bytes, over this GPU's binding limit of ${limit}.`, {
      subject: label,
      hint: 'Use a shorter sequence or a smaller batch.',
    });
  }
  const buffer = device.createBuffer({ label, size: bytes, usage: STORAGE_USAGE });
  return { label, shape, dtype, buffer, numel, offset: 0 };
}

/** The tensor's elements in bytes (not rounded). */
export function bytesOf(t: Pick<Tensor, 'numel' | 'dtype'>): number {
  return t.numel * BYTES[t.dtype];
}

/** The bytes a kernel binds or a copy moves for this tensor: bytesOf rounded up to 4 (at least 4). */
export function bindingBytes(t: Pick<Tensor, 'numel' | 'dtype'>): number {
  return Math.max(4, Math.ceil(bytesOf(t) / 4) * 4);
}

/**
 * A view of `numel(shape)` elements of `t` from element `elementOffset` on, sharing t's buffer (writes through a
 * view are writes to t). The byte offset must be a multiple of VIEW_ALIGNMENT (e.g. rows of a (N, C) f32 matrix from
 * a row that is a multiple of 64) and the range must lie inside t. A view of a view is a view of the owner.
 */
export function view(t: Tensor, elementOffset: number, shape: readonly number[], label?: string): Tensor {
  const numel = shape.reduce((a, b) => a * b, 1);
  const name = label ?? `${t.label}[${elementOffset}:${elementOffset + numel}]`;
  if (!Number.isInteger(elementOffset) || elementOffset < 0 || numel <= 0 || elementOffset + numel > t.numel) {
    throw new Error(`view ${name}: elements [${elementOffset}, ${elementOffset + numel}) are not inside ${t.label} [${t.shape.join(', ')}] (${t.numel} elements)`);
  }
  const offset = t.offset + elementOffset * BYTES[t.dtype];
  if (offset % VIEW_ALIGNMENT !== 0) {
    throw new Error(`view ${name}: byte offset ${offset} is not a multiple of ${VIEW_ALIGNMENT} (minStorageBufferOffsetAlignment)`);
  }
  return { label: name, shape, dtype: t.dtype, buffer: t.buffer, numel, offset, viewOf: t.viewOf ?? t };
}

/** Upload host data into a tensor (queued). A view receives exactly its own range (its byte length must then be a multiple of 4). */
export function upload(device: GPUDevice, t: Tensor, data: Float32Array | Int32Array | Uint32Array | Uint16Array): void {
  if (data.length !== t.numel) throw new Error(`${t.label}: uploading ${data.length} elements into [${t.shape.join(', ')}]`);
  const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength % 4 === 0) device.queue.writeBuffer(t.buffer, t.offset, bytes);
  else {
    // Padding would overwrite the bytes after a view, which belong to its owner.
    if (t.viewOf) throw new Error(`${t.label}: a view of ${bytes.byteLength} bytes (not a multiple of 4) cannot be uploaded`);
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

/** A buffer the host maps to read what a copy put into it (MAP_READ | COPY_DST): staging for readbacks. */
export function createReadbackBuffer(device: GPUDevice, label: string, size: number): GPUBuffer {
  return device.createBuffer({ label, size, usage: READBACK_USAGE });
}

/** Copy a tensor (or a view: just its range) back to the host as f32 values (u32 tensors: readbackU32; i32 and f16: readbackBytes). */
export async function readback(device: GPUDevice, t: Tensor): Promise<Float32Array> {
  return new Float32Array(await readbackBytes(device, t));
}

/** A u32 tensor's values, back on the host. */
export async function readbackU32(device: GPUDevice, t: Tensor): Promise<Uint32Array> {
  return new Uint32Array(await readbackBytes(device, t));
}

/** The tensor's bytes (bytesOf(t) of them), from its offset. */
export async function readbackBytes(device: GPUDevice, t: Tensor): Promise<ArrayBuffer> {
  const size = bindingBytes(t);
  const staging = createReadbackBuffer(device, `${t.label}.readback`, size);
  const encoder = device.createCommandEncoder({ label: `${t.label}.readback` });
  encoder.copyBufferToBuffer(t.buffer, t.offset, staging, 0, size);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(MAP_READ);
  const out = staging.getMappedRange().slice(0, bytesOf(t));
  staging.unmap();
  staging.destroy();
  return out;
}

// ── row parts: a (rows, cols) matrix over several bindings ─────────────────────────────────────────────────────

/** One part of a row-split matrix: rows [rowStart, rowStart + tensor.shape[0]) of the whole, as a (rows, cols) tensor. */
export interface RowPart {
  tensor: Tensor;
  rowStart: number;
}

/** Rows per part are a multiple of this, so row offsets inside a part stay VIEW_ALIGNMENT-aligned for any cols. */
export const PART_ROW_MULTIPLE = 64;

/**
 * Plan row parts of a (rows, cols) matrix of `elemBytes`-byte elements so each part fits `maxBytes` (one binding,
 * see bindingLimit): one part when the whole fits, else as few parts as fit, of equal size (a multiple of
 * PART_ROW_MULTIPLE rows) but the last. Throws a GradPruneError when not even PART_ROW_MULTIPLE rows fit.
 */
export function planRowParts(rows: number, cols: number, elemBytes: number, maxBytes: number): { rowStart: number; rows: number }[] {
  const rowBytes = cols * elemBytes;
  if (Math.ceil((rows * rowBytes) / 4) * 4 <= maxBytes) return [{ rowStart: 0, rows }];
  const fit = Math.floor(maxBytes / rowBytes / PART_ROW_MULTIPLE) * PART_ROW_MULTIPLE;
  if (fit === 0) {
    throw new GradPruneError('memory', `A matrix with rows of ${rowBytes} bytes cannot be split into parts that fit this GPU's binding limit of ${maxBytes} bytes.`, {
      hint: 'Use f16 weights or a smaller model.',
    });
  }
  const count = Math.ceil(rows / fit);
  const per = Math.ceil(rows / count / PART_ROW_MULTIPLE) * PART_ROW_MULTIPLE; // ≤ fit
  const parts: { rowStart: number; rows: number }[] = [];
  for (let r = 0; r < rows; r += per) parts.push({ rowStart: r, rows: Math.min(per, rows - r) });
  return parts;
}

/** Allocate a (rows, cols) matrix as zeroed row parts (planRowParts; maxBytes defaults to the device's binding limit). */
export function createRowParts(device: GPUDevice, label: string, rows: number, cols: number, dtype: GpuDType = 'f32', maxBytes = bindingLimit(device)): RowPart[] {
  const plan = planRowParts(rows, cols, BYTES[dtype], maxBytes);
  if (plan.length === 1) return [{ tensor: createTensor(device, label, [rows, cols], dtype), rowStart: 0 }];
  return plan.map((p, i) => ({ tensor: createTensor(device, `${label}.part${i}`, [p.rows, cols], dtype), rowStart: p.rowStart }));
}

/** Total rows of a row-split matrix; throws unless the parts tile [0, rows) in order with one column count. */
export function rowPartsRows(parts: readonly RowPart[], what = 'row parts'): number {
  if (parts.length === 0) throw new Error(`${what}: no parts`);
  let next = 0;
  const cols = parts[0].tensor.shape[1];
  for (const p of parts) {
    if (p.tensor.shape.length !== 2 || p.tensor.shape[1] !== cols) throw new Error(`${what}: part ${p.tensor.label} [${p.tensor.shape.join(', ')}] is not (rows, ${cols})`);
    if (p.rowStart !== next) throw new Error(`${what}: part ${p.tensor.label} starts at row ${p.rowStart}, expected ${next}`);
    next += p.tensor.shape[0];
  }
  return next;
}

/**
 * Upload rows [firstRow, firstRow + data.length / cols) of a row-split matrix (queued), crossing part boundaries as
 * needed: a loader can stream a matrix larger than any one array in slices. Each slice's byte offset and length
 * inside a part must be multiples of 4 (always so for f32; for f16, even cols).
 */
export function uploadRows(device: GPUDevice, parts: readonly RowPart[], firstRow: number, data: Float32Array | Uint16Array): void {
  const cols = parts[0].tensor.shape[1];
  const rows = data.length / cols;
  if (!Number.isInteger(rows)) throw new Error(`uploadRows: ${data.length} values are not whole rows of ${cols}`);
  const total = rowPartsRows(parts, 'uploadRows');
  if (firstRow < 0 || firstRow + rows > total) throw new Error(`uploadRows: rows [${firstRow}, ${firstRow + rows}) are outside [0, ${total})`);
  const bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  const rowBytes = cols * data.BYTES_PER_ELEMENT;
  for (const p of parts) {
    const pr = p.tensor.shape[0];
    const lo = Math.max(firstRow, p.rowStart);
    const hi = Math.min(firstRow + rows, p.rowStart + pr);
    if (lo >= hi) continue;
    if (BYTES[p.tensor.dtype] !== data.BYTES_PER_ELEMENT) throw new Error(`uploadRows: ${data.BYTES_PER_ELEMENT}-byte values into ${p.tensor.dtype} ${p.tensor.label}`);
    const dst = p.tensor.offset + (lo - p.rowStart) * rowBytes;
    const slice = bytes.subarray((lo - firstRow) * rowBytes, (hi - firstRow) * rowBytes);
    if (dst % 4 !== 0 || slice.byteLength % 4 !== 0) throw new Error(`uploadRows: rows [${lo}, ${hi}) of ${p.tensor.label} are not 4-byte aligned (odd f16 rows)`);
    device.queue.writeBuffer(p.tensor.buffer, dst, slice);
  }
}
